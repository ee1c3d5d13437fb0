# Call 148 (session 19): are the step's GEMMs slower than alone (calls 144-146: xl 345.6 ms in
# the step against a 316-323 ms sum alone; large 222.4 against 208-211) because the GPU clocks
# down under the step's sustained load? nvidia-smi samples SM clock, power and throttle reasons
# every 100 ms through xl b48's step and through a sustained loop of its two largest GEMM shapes.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv,noheader,nounits -lms 100 > $OUT/smi148.csv &
S=$!
echo "phase step_start $(date +%s.%N)" > $OUT/phases148.txt
timeout 200 $B --out $OUT/r148.jsonl --sizes xl --batch 48 --steps 30 --variant clocks --set norm_impl=pallas --timeout 190 | tail -1
echo "phase gemm_start $(date +%s.%N)" >> $OUT/phases148.txt
(cd bench && XLA_PYTHON_CLIENT_MEM_FRACTION=0.75 timeout 120 python3 probe_gemm.py runs/gemm_sigs_xl.json --top 2 --steps 400 --reps 6) | cut -c1-250
echo "phase end $(date +%s.%N)" >> $OUT/phases148.txt
kill $S
python3 - <<'PY'
import os, datetime
out = os.environ["OUT"]
rows = []
for l in open(f"{out}/smi148.csv"):
  p = [x.strip() for x in l.split(",")]
  try:
    t = datetime.datetime.strptime(p[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
    rows.append((t, float(p[1]), float(p[3]), p[5]))
  except Exception:
    pass
busy = [r for r in rows if r[2] > 250]
import collections
print("samples", len(rows), "busy (>250 W)", len(busy))
for lo, hi in ((0, 1e18),):
  cl = sorted(r[1] for r in busy); pw = sorted(r[2] for r in busy)
  if cl:
    q = lambda v, f: v[int(f * (len(v) - 1))]
    print("SM MHz p10/p50/p90", q(cl, .1), q(cl, .5), q(cl, .9), "power W p10/p50/p90", q(pw, .1), q(pw, .5), q(pw, .9))
print("throttle reasons (busy):", collections.Counter(r[3] for r in busy).most_common(5))
# runs of busy samples separated by idle gaps: the train step, then the GEMM loop
seg, segs = [], []
for r in busy:
  if seg and r[0] - seg[-1][0] > 3: segs.append(seg); seg = []
  seg.append(r)
segs.append(seg)
for s in segs:
  if len(s) < 5: continue
  cl = sorted(r[1] for r in s); pw = sorted(r[2] for r in s)
  print(f"segment {s[0][0]-rows[0][0]:7.1f}s +{s[-1][0]-s[0][0]:5.1f}s n={len(s)} SM MHz median {cl[len(cl)//2]} min {cl[0]} power median {pw[len(pw)//2]} max {pw[-1]}")
PY
