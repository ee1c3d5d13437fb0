# Call 127 (session 17): XLA's dot merger off (`--xla_gpu_dot_merger_threshold_mb=0`): call 123's
# profile showed the decoder's self-attention K/V projections merged into one [32768, 1536] GEMM
# whose output XLA then copies into two [32768, 768] slices (24 copies, 0.88 ms at base b256).
# A/B at base b256 and large b112 on today's code (loss statistics kernel), 95 % pool, both
# norm kernels.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
NOMERGE="--xla_gpu_enable_triton_gemm=false --xla_gpu_dot_merger_threshold_mb=0"
$B --out $OUT/r127.jsonl --sizes base --batch 256 --variant today --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r127.jsonl --sizes base --batch 256 --variant no_dot_merger --xla-flags "$NOMERGE" --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r127.jsonl --sizes large --batch 112 --variant today --set norm_impl=pallas --timeout 150 | tail -1
$B --out $OUT/r127.jsonl --sizes large --batch 112 --variant no_dot_merger --xla-flags "$NOMERGE" --set norm_impl=pallas --timeout 150 | tail -1
