# Call 114 (session 15): the fused norm's forward kernel writes the residual stream's next
# buffer (a copy of x from the same read) instead of returning x itself, which it saves for the
# backward: the next residual add, a GEMM writing in place into its addend, made XLA copy x
# first (60 copies, 4.3 ms of base b256's step, row 93). The kernel check on the GPU first
# (`probe_rms_norm.py`: errors against float32, the residual bit for bit), then base b256 and
# large b112 A/B in one call, 95 % pool, both norm kernels (`--patch
# bench.variants:norm_residual_identity` = before).
# The code this call measured is at commit bb94168, reverted after it (NOTES row 103).
source bench/runs/setup.sh
timeout 120 python3 bench/probe_rms_norm.py
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "base 256 120" "large 112 200"; do
  set -- $s
  $B --out $OUT/r114.jsonl --sizes $1 --batch $2 --variant residual_copy --set norm_impl=pallas --timeout $3 | tail -1
  $B --out $OUT/r114.jsonl --sizes $1 --batch $2 --variant residual_identity --set norm_impl=pallas \
     --patch bench.variants:norm_residual_identity --timeout $3 | tail -1
done
