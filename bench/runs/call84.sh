# Call 84 (session 12): the headline batch sizes in a 95 % pool with the new default norm
# (`auto`: XLA's forward, the fused backward kernel) against both kernels (`pallas`): large b112
# (best large row, call 56: 40.8 % with XLA's norm) and base b256 (call 81: 37.0 % with pallas).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "large 112 200" "base 256 110"; do
  set -- $s
  $B --out $OUT/r84.jsonl --sizes $1 --batch $2 --variant norm_auto_pool95 --timeout $3 | tail -1
  $B --out $OUT/r84.jsonl --sizes $1 --batch $2 --variant norm_pallas_pool95 --set norm_impl=pallas --timeout $3 | tail -1
done
