"""XLA_FLAGS the benchmarks pass to flanjax runs by default (bench/NOTES.md has each flag's
measured effect). Override with `--xla-flags ''`.

--xla_gpu_enable_triton_gemm=false: cuBLAS for every GEMM. Same step time on base (95.7 vs
96.0 ms) and a quarter less compile time (35.9 vs 52.5 s), since XLA then autotunes fewer
Triton GEMM fusions.
"""
DEFAULT = "--xla_gpu_enable_triton_gemm=false"
