# Call 184 (session 26): call 183's CONCURRENT command buffers needed 83.4 GB at large b112 (XLA
# cannot reuse a buffer between commands that may run at once). Whether concurrency pays at all:
# large b64 A/B/A (memory to spare), then b96 concurrent (does it fit a 95 % pool?).
source bench/runs/setup.sh
cd .clean
B="python3 bench/train_throughput.py --steps 10 --log-dir /tmp/logs"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
D="--xla_gpu_enable_triton_gemm=false --xla_gpu_dot_merger_threshold_mb=0"
C="$D --xla_gpu_command_buffer_scheduling_mode=CONCURRENT"
run() { timeout 130 $B --out $OUT/r184.jsonl --sizes large --set norm_impl=pallas \
  --timeout 125 "$@" | tail -1; }
run --batch 64 --variant default
run --batch 64 --variant concurrent --xla-flags "$C"
run --batch 64 --variant default2
run --batch 96 --variant concurrent --xla-flags "$C"
grep -h '"error"' $OUT/r184.jsonl | cut -c1-300
