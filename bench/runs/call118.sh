# Call 118 (session 16): self-attention's dQ joins dK and dV in one [b, s, 3, h, d] buffer
# (`FlashOptions.joint_dq`, `layers.stacked_projection` over q, k, v; row 108): kernels
# against float32 and model gradients against einsum on the GPU, then base b256 and large b112
# A/B in one call (`--patch bench.variants:separate_dq` = call 117's code; base also
# `separate_dkv` = before row 107), 95 % pool, both norm kernels.
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --check > $OUT/check118.jsonl 2>&1
echo "kernel checks ok: $(grep -c '"ok": true' $OUT/check118.jsonl), failed: $(grep -c '"ok": false' $OUT/check118.jsonl)"
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl pallas --packed 2>&1 | tail -1
for s in "base 256 120 qkv,separate_dq,separate_dkv" "large 112 200 qkv,separate_dq"; do
  set -- $s
  for v in ${4//,/ }; do
    p=""; [ $v != qkv ] && p="--patch bench.variants:$v"
    XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r118.jsonl --sizes $1 --batch $2 --variant $v --set norm_impl=pallas $p --timeout $3 | tail -1
  done
done
