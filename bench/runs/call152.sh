# Call 152 (session 19): the sustained rate (power-capped) of the largest GEMM signatures of
# large b112 and xl b48, each held for a few seconds (`probe_gemm.py --steps 300`), with the SM
# clock sampled: row 125 measured xl's two largest at 724.5 TFLOP/s; the step's GEMMs run at
# 706 (large) and 732 (xl) TFLOP/s.
source bench/runs/setup.sh
nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 200 > $OUT/smi152.csv &
S=$!
cd bench
for s in large xl; do
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.8 timeout 200 python3 probe_gemm.py runs/gemm_sigs_$s.json --top 6 --steps 300 --reps 6 \
    > $OUT/p152_$s.jsonl 2>&1
  python3 -c "
import json
for l in open('$OUT/p152_$s.jsonl'):
  if l.startswith('{\"phase'): r=json.loads(l); print('$s', r['calls_per_step'], r['lhs'], r['rhs'], r['ms_alone'], r['tflops_alone'])
  elif l.startswith('{'): print('$s', l.strip())
"
done
kill $S
# (the awk summary that stood here failed on its escapes; the clock was read from smi152.csv
# afterwards: busy samples (> 400 W) 63, SM clock median 1500 MHz, p10 1215)
