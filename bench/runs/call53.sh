# Call 53 (session 6): XLA's block-level fusion rewriter (Triton kernels for reduction +
# elementwise, e.g. the RMSNorm's two kernels as one) on the full large b64 step, A/B/A in one
# call (row 21 screened it at -1.5 % on 6+6 layers, within that screening's noise).
source bench/runs/setup.sh
F="--xla_gpu_enable_triton_gemm=false"
$B --out $OUT/r53.jsonl --sizes large --batch 64 --variant default_a --timeout 150 | tail -1
$B --out $OUT/r53.jsonl --sizes large --batch 64 --variant block_level --xla-flags "$F --xla_gpu_experimental_enable_fusion_block_level_rewriter=true" --timeout 150 | tail -1
$B --out $OUT/r53.jsonl --sizes large --batch 64 --variant default_b --timeout 150 | tail -1
