# Call 83 (session 12): `norm_impl="auto"` (new default on GPUs: XLA's forward norm with the
# fused backward kernel, `pallas_backward`) against XLA's norm and both kernels, large b64 A/B/C
# in one call; then xl b48 in a 95 % pool (the best xl row's configuration) on the new default.
source bench/runs/setup.sh
for v in "auto" "xla --set norm_impl=xla" "pallas --set norm_impl=pallas"; do
  set -- $v
  $B --out $OUT/r83.jsonl --sizes large --batch 64 --variant norm_$1 ${@:2} --timeout 150 | tail -1
done
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r83.jsonl --sizes xl --batch 48 --variant norm_auto_pool95 --timeout 200 | tail -1
