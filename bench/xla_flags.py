"""XLA_FLAGS the benchmarks pass to flanjax runs by default (bench/NOTES.md has each flag's
measured effect). Override with `--xla-flags ''`.

--xla_gpu_enable_triton_gemm=false: cuBLAS for every GEMM. Same step time on base (95.7 vs
96.0 ms) and a quarter less compile time (35.9 vs 52.5 s), since XLA then autotunes fewer
Triton GEMM fusions.

--xla_gpu_dot_merger_threshold_mb=0: XLA's dot merger off. It joined the decoder self-attention's
K and V projections into one [tokens, 2 x 768] GEMM and then copied its two halves into separate
buffers for the attention kernel (24 copies, 0.88 ms at base b256). Base b256 287.4 vs 289.1 ms,
large b112 390.5 vs 393.0 ms (call 127, bench/NOTES.md row 115).
"""
DEFAULT = "--xla_gpu_enable_triton_gemm=false --xla_gpu_dot_merger_threshold_mb=0"
