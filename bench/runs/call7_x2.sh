# Call 7 (nvidia-h200-x2): data-parallel and data x model scaling of base vs one GPU, same host.
source bench/runs/setup.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nvidia-smi topo -m | head -4
echo "NCCL_NVLS_ENABLE=$NCCL_NVLS_ENABLE"
NT="--xla-flags=--xla_gpu_enable_triton_gemm=false"
R="--out $OUT/r7.jsonl --sizes base --timeout 150 $NT --patch bench.variants:best"
CUDA_VISIBLE_DEVICES=0 $B $R --batch 64 --mesh 1,1 --variant 1gpu | tail -1
$B $R --batch 128 --mesh 2,1 --variant dp2 | tail -1
$B $R --batch 64 --mesh 1,2 --variant mp2 | tail -1
