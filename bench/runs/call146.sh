# Call 146 (session 19): call 145 found xl's decoder forward projection [6144, 2048] x [2048, 2048]
# (144 GEMMs a step: self-attention Q, K, V, O and cross-attention Q, O) at 322 TFLOP/s alone
# (0.160 ms; 23 ms a step, 13.7 of them lost against 790), while the same product with the
# weight transposed runs at 672 and three of them merged at 782. Is it XLA's choice of cuBLASLt
# algorithm? Every signature of xl and large again under the legacy cuBLAS path
# (--xla_gpu_enable_cublaslt=false) and without autotuning (--xla_gpu_autotune_level=0).
source bench/runs/setup.sh
cd bench
D="--xla_gpu_enable_triton_gemm=false --xla_gpu_dot_merger_threshold_mb=0"
run() { XLA_FLAGS="$D $3" timeout 150 python3 probe_gemm.py runs/gemm_sigs_$1.json --top 29 > $OUT/p146_$1_$2.jsonl 2>&1; }
run xl lt; run xl legacy "--xla_gpu_enable_cublaslt=false"; run xl noauto "--xla_gpu_autotune_level=0"
run large lt; run large legacy "--xla_gpu_enable_cublaslt=false"
python3 - <<'PY'
import json, os
out = os.environ["OUT"]
for s, vs in (("xl", ("lt", "legacy", "noauto")), ("large", ("lt", "legacy"))):
  rows = {}
  for v in vs:
    for l in open(f"{out}/p146_{s}_{v}.jsonl"):
      if l.startswith('{"phase'):
        r = json.loads(l); rows.setdefault((str(r["lhs"]), str(r["rhs"]), str(r["dims"])), {})[v] = r
      elif l.startswith('{"sig'):
        print(s, v, l.strip())
  for k, d in rows.items():
    r0 = next(iter(d.values()))
    print(f"{s:5} {r0['calls_per_step']:4} " + " ".join(f"{v}={d[v]['ms_alone']:.3f}/{d[v]['tflops_alone']:.0f}" if v in d else f"{v}=-" for v in vs) + f" {k[0]}x{k[1]} {r0['source'][-30:]}")
PY
