# Call 112 (session 15): the cross-attention's backward again under the block-first launch
# order. Call 111's ncu: the one-kernel backward (grid rows x heads, 8 warps, 182 registers,
# one program per SM) 684 us at base b256, 41 % of DRAM bandwidth, 21 % SM: latency-bound.
# Row 85 chose it over the dK/dV + dQ kernels when the dK/dV kernel re-read q and dO from HBM
# once per key block; now they come from L2. Per attention (`--fused`, 16 heads, b64 and b256),
# then base b256 A/B in one call (95 % pool, both norm kernels; `--patch
# bench.variants:two_kernel_backward`).
source bench/runs/setup.sh
timeout 120 python3 bench/probe_flash_attention.py --fused --batch 64
timeout 120 python3 bench/probe_flash_attention.py --fused --batch 256
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r112.jsonl --sizes base --batch 256 --variant fused_bwd --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r112.jsonl --sizes base --batch 256 --variant two_kernels --set norm_impl=pallas \
   --patch bench.variants:two_kernel_backward --timeout 120 | tail -1
