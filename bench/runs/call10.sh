# Call 10: packed rows through the einsum path with the batch-1 Toeplitz bias (no per-example
# [b, h, q, k] bias any more) against unpacked cuDNN; two more XLA fusion flags on large 6+6.
source bench/runs/setup.sh
$B --out $OUT/r10.jsonl --sizes base --batch 64 --variant unpacked --timeout 120 | tail -1
$B --out $OUT/r10.jsonl --sizes base --batch 64 --packed --variant packed --timeout 120 | tail -1
$B --out $OUT/r10.jsonl --sizes large --batch 64 --steps 5 --packed --variant packed --timeout 200 | tail -1
L6="--sizes large --batch 96 --steps 5 --set num_encoder_layers=6 --set num_decoder_layers=6 --timeout 80"
for f in "--xla_gpu_enable_triton_gemm=true --xla_gpu_triton_gemm_any=true" "--xla_gpu_enable_triton_gemm=false --xla_gpu_experimental_enable_fusion_block_level_rewriter=true"; do
  $B --out $OUT/r10.jsonl $L6 --xla-flags "$f" --variant "l6 $f" | tail -1
done
