# Call 74 (session 10): JAX's threefry as a CUDA kernel (`jax_threefry_gpu_kernel_lowering`, set
# here through JAX_THREEFRY_GPU_KERNEL_LOWERING=true) instead of unrolled into XLA fusions: the
# dropout sites outside the attention kernel cost base fine-tuning 31 s of compile and 2.4 ms
# per step (call 73). Base fine-tuning b64 with / without it, then large fine-tuning b64 with it
# (call 72 without: 252.6 ms, 165.1 s compile).
source bench/runs/setup.sh
JAX_THREEFRY_GPU_KERNEL_LOWERING=true $B --out $OUT/r74.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft_tfkernel --timeout 150 | tail -1
$B --out $OUT/r74.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft --timeout 150 | tail -1
JAX_THREEFRY_GPU_KERNEL_LOWERING=true $B --out $OUT/r74.jsonl --sizes large --batch 64 --packed --set dropout_rate=0.05 --variant ft_tfkernel --timeout 260 | tail -1
