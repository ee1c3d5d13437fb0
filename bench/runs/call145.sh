# Call 145 (session 19): every GEMM signature of the large b112 and xl b48 steps timed alone
# (`probe_gemm.py`; signatures from call 144's HLO by `gemm_efficiency.py none HLO`, saved as
# bench/runs/gemm_sigs_*.json), and merged-GEMM candidates (gemm_candidates_*.json). In call 144's
# profile the GEMMs took 222.4 ms at large (157.1 TFLOP, 706 TFLOP/s) and 345.6 at xl (252.9
# TFLOP, 732 TFLOP/s): is the shortfall cuBLAS's at these shapes, or the step's?
source bench/runs/setup.sh
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
cd bench
for s in large xl; do
  timeout 250 python3 probe_gemm.py runs/gemm_sigs_$s.json,runs/gemm_candidates_$s.json --top 40 \
    > $OUT/probe145_$s.jsonl 2>&1
  python3 -c "
import json,sys
for l in open('$OUT/probe145_$s.jsonl'):
  if not l.startswith('{'): print(l.rstrip()[:200]); continue
  r=json.loads(l)
  if 'lhs' not in r: print(r); continue
  print(f\"{r['calls_per_step']:4} {r['ms_alone']:7.3f} {r['tflops_alone']:6.0f} {r['phase'][:8]:8} {r['lhs']}x{r['rhs']} c{r['dims']['lhs_contracting_dimensions']}{r['dims']['rhs_contracting_dimensions']} {r['source'][-40:]}\")
"
done
