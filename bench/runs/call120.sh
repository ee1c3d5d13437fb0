# Call 120 (session 16): the headline rows on the session's final code (joint dQ/dK/dV buffers
# and stacked projections, rows 107-108), both norm kernels, 95 % pool, on one machine: base
# b256, large b112, xl b48; and base b256 with every default (75 % pool, default norm).
source bench/runs/setup.sh
for s in "base 256 120" "large 112 200" "xl 48 230"; do
  set -- $s
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r120.jsonl --sizes $1 --batch $2 --variant final --set norm_impl=pallas --timeout $3 | tail -1
done
$B --out $OUT/r120.jsonl --sizes base --batch 256 --variant final_default --timeout 120 | tail -1
