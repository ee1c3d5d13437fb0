# Call 178 (session 24): (1) the final code's scanned T5-large step with Adafactor per layer now
# the default (row 150: expected at "stack"'s 289.6 ms); (2) the large headline (b112, 95 % pool,
# both norm kernels) profiled with its optimized HLO from the same compile, to see which fusions
# XLA emits through Triton ("kind":"__triton") and what they cost; (3) A/B of the XLA flags that
# steer those emitters: the block-level fusion rewriter off, and XLA's fusion autotuner on
# (native emitter or Triton, whichever is faster, per fusion).
source bench/runs/setup.sh
cd .clean
B="python3 bench/train_throughput.py --steps 10 --log-dir /tmp/logs"
timeout 150 $B --out $OUT/r178.jsonl --sizes large --batch 64 --set scan_layers=true \
  --set remat_policy=full --variant scanned_layer_default --timeout 145 | tail -1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
D="--xla_gpu_enable_triton_gemm=false --xla_gpu_dot_merger_threshold_mb=0"
run() { timeout 190 $B --out $OUT/r178.jsonl --sizes large --batch 112 --set norm_impl=pallas \
  --timeout 185 "$@" | tail -1; }
run --variant default --profile-dir /tmp/prof_l --dump-hlo /tmp/hlo_l
timeout 100 python3 bench/profile_summary.py /tmp/prof_l --top 70 > $OUT/prof_l.txt 2>&1
gzip -c /tmp/hlo_l/*.hlo.txt > $OUT/hlo_l.txt.gz
head -12 $OUT/prof_l.txt
run --variant no_block_rewriter --xla-flags "$D --xla_gpu_experimental_enable_fusion_block_level_rewriter=false"
run --variant fusion_autotuner --xla-flags "$D --xla_gpu_experimental_enable_fusion_autotuner=true"
run --variant default2
grep -h '"error"' $OUT/r178.jsonl | cut -c1-600
