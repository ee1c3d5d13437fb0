# Call 119 (session 16): the gated GELU's projections as one GEMM each way
# (`layers.gated_gelu_projection`: x [w0 w1] into one [b, s, 2, f] buffer; the backward's
# d(gate), d(lin) into one, one GEMM for dx and one for both kernels; row 109): model
# gradients against einsum on the GPU, then base b256 and large b112 A/B in one call
# (`--patch bench.variants:gelu_two_gemms` = before), 95 % pool, both norm kernels.
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
for s in "base 256 120" "large 112 200"; do
  set -- $s
  for v in one_gemm gelu_two_gemms; do
    p=""; [ $v != one_gemm ] && p="--patch bench.variants:$v"
    XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r119.jsonl --sizes $1 --batch $2 --variant $v --set norm_impl=pallas $p --timeout $3 | tail -1
  done
done
