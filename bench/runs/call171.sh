# Call 171 (session 23): XLA's cuDNN GEMM fusions (`--xla_gpu_cudnn_gemm_fusion_level`, never
# measured here: GEMMs with fused elementwise prologues / epilogues through cuDNN, which XLA's
# autotuner weighs against cuBLAS and Triton; needs Triton GEMM fusions on), large b112, A/B/A
# in one call against the harness defaults. Runs from an export of the commit (`.clean`, carried
# with `.whl`).
source bench/runs/setup.sh; cd .clean; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
T="--xla_gpu_enable_triton_gemm=true --xla_gpu_dot_merger_threshold_mb=0"
run() { timeout 185 $B --out $OUT/r171.jsonl --sizes large --batch 112 --set norm_impl=pallas \
  --timeout 180 "$@" | tail -1; }
run --variant default
run --variant cudnn3 --xla-flags "$T --xla_gpu_cudnn_gemm_fusion_level=3"
run --variant default2
grep -h '"error"' $OUT/r171.jsonl | cut -c1-600
