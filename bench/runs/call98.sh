# Call 98 (session 14): call 97 found the per-offset bias slower than the dense one in the
# kernels (2-byte gathers: scalar loads that Triton does not prefetch). Here the offsets in
# float32 (4-byte elements: asynchronous copies) and C-aligned shifted copies (`_aligned_copies`:
# each row of a block starts 16-byte aligned in one copy, `pl.multiple_of`: vector loads),
# checked against float32 on the GPU, then per attention (large's shapes b64; dense, gather
# f32 / bf16, aligned f32 / bf16, cuDNN), then base b256 A/B/C as call 97 with the aligned f32
# default.
# Ran on commit e503e22; the per-offset bias was reverted after call 98 (bench/NOTES.md row 92):
# `git checkout e503e22` to rerun.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
timeout 150 python3 bench/probe_flash_attention.py --check | grep offsets
timeout 240 python3 bench/probe_flash_attention.py --offsets --batch 64
$B --out $OUT/r98.jsonl --sizes base --batch 256 --variant pallas_offsets --set norm_impl=pallas \
   --set attention_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r98.jsonl --sizes base --batch 256 --variant pallas_dense --set norm_impl=pallas \
   --set attention_impl=pallas --patch bench.variants:dense_kernel_bias --timeout 120 | tail -1
$B --out $OUT/r98.jsonl --sizes base --batch 256 --variant auto --set norm_impl=pallas --timeout 120 | tail -1
