# Call 147 (session 19): xl b48's step with the legacy cuBLAS path (--xla_gpu_enable_cublaslt=false)
# against today's flags (cuBLASLt), A/B/A in one call. Call 146 timed every GEMM signature of
# the step alone: xl's sum 315.6 ms legacy against 322.9 with cuBLASLt (large 208.1 against
# 210.5), mostly the decoder's [6144, 2048] x [2048, 2048] projections (144 a step; cuBLASLt's
# autotuned pick ran 0.102-0.160 ms in calls 145-146, legacy 0.074). Prediction: -5..-7 ms at xl.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
D="--xla_gpu_enable_triton_gemm=false --xla_gpu_dot_merger_threshold_mb=0"
for v in lt legacy lt2; do
  f="$D"; [ $v = legacy ] && f="$D --xla_gpu_enable_cublaslt=false"
  timeout 190 $B --out $OUT/r147.jsonl --sizes xl --batch 48 --variant $v --set norm_impl=pallas \
    --xla-flags "$f" --timeout 180 | tail -1
done
