# Call 97 (session 14): the relative bias per offset (`bias_offsets` [h, q + k - 1], gathered
# per block from L1) instead of a dense [h, q, k] block read from L2 per block (as many bytes
# as the K and V blocks together). First the kernels against float32 on the GPU (the Triton
# gather is new), then per attention at large's shapes b64, then base b256 steps A/B/C in one
# call, 95 % pool, both norm kernels: auto (cuDNN encoder; the decoder's Pallas self-attention
# now per offset), Pallas everywhere per offset, Pallas everywhere dense (before).
# Ran on commit f5aedf4; the per-offset bias was reverted after call 98 (bench/NOTES.md row 92):
# `git checkout f5aedf4` to rerun.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
timeout 150 python3 bench/probe_flash_attention.py --check
timeout 150 python3 bench/probe_flash_attention.py --offsets --batch 64
$B --out $OUT/r97.jsonl --sizes base --batch 256 --variant auto --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r97.jsonl --sizes base --batch 256 --variant pallas_offsets --set norm_impl=pallas \
   --set attention_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r97.jsonl --sizes base --batch 256 --variant pallas_dense --set norm_impl=pallas \
   --set attention_impl=pallas --patch bench.variants:dense_kernel_bias --timeout 120 | tail -1
