# Call 117 (session 16): dK and dV in one buffer with one input-gradient GEMM for the K/V
# projections (`FlashOptions.joint_dkv`, `layers.kv_projection`; row 107): kernels against
# float32 and model gradients against einsum on the GPU, then base b256 and large b112 A/B in
# one call (`--patch bench.variants:separate_dkv` = before), 95 % pool, both norm kernels.
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --check 2>&1 | tail -3
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl pallas --packed 2>&1 | tail -1
for s in "base 256 120" "large 112 200"; do
  set -- $s
  for v in joint separate; do
    p=""; [ $v = separate ] && p="--patch bench.variants:separate_dkv"
    XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r117.jsonl --sizes $1 --batch $2 --variant $v --set norm_impl=pallas $p --timeout $3 | tail -1
  done
done
