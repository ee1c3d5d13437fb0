# Call 183 (session 26): XLA's command buffers (CUDA graphs) in CONCURRENT scheduling mode,
# where independent commands get no barrier between them and may run at once on the GPU (the
# default, LHS, orders them as the latency-hiding scheduler's one stream does). The encoder's
# attention kernels are latency-bound at ~45 % of the SMs (NOTES row 100); a weight-gradient GEMM
# that does not depend on them could fill the rest. Large b112 headline, 95 % pool, both norm
# kernels, A/B/A/B in one call.
source bench/runs/setup.sh
cd .clean
B="python3 bench/train_throughput.py --steps 10 --log-dir /tmp/logs"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
D="--xla_gpu_enable_triton_gemm=false --xla_gpu_dot_merger_threshold_mb=0"
C="$D --xla_gpu_command_buffer_scheduling_mode=CONCURRENT"
XLA_FLAGS="$C" timeout 60 python3 -c "import jax, jax.numpy as jnp; print(jax.__version__, jax.jit(lambda x: x * 2 + 1)(jnp.ones(4)))" 2>&1 | tail -2
run() { timeout 140 $B --out $OUT/r183.jsonl --sizes large --batch 112 --set norm_impl=pallas \
  --timeout 135 "$@" | tail -1; }
run --variant default
run --variant concurrent --xla-flags "$C"
run --variant default2
run --variant concurrent2 --xla-flags "$C"
grep -h '"error"' $OUT/r183.jsonl | cut -c1-600
