# Call 150 (session 19): what T5's relative bias costs today's step, as a bound (measurement
# only: `--patch bench.variants:no_bias` drops the bias from the fused attention, which is not
# T5's maths), at large b112 and xl b48; and large's SM clock and power through its step
# (call 148 sampled xl's: power-capped at a 1590 MHz median).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active \
  --format=csv,noheader,nounits -lms 100 > $OUT/smi150.csv &
S=$!
timeout 150 $B --out $OUT/r150.jsonl --sizes large --batch 112 --steps 30 --variant base_clocks --set norm_impl=pallas --timeout 145 | tail -1
kill $S
python3 - <<'PY'
import os
out = os.environ["OUT"]
rows = []
for l in open(f"{out}/smi150.csv"):
  p = [x.strip() for x in l.split(",")]
  try: rows.append((float(p[1]), float(p[2]), p[3]))
  except Exception: pass
busy = [r for r in rows if r[1] > 400]
cl = sorted(r[0] for r in busy); pw = sorted(r[1] for r in busy)
q = lambda v, f: v[int(f * (len(v) - 1))]
print("large busy samples", len(busy), "SM MHz p10/50/90", q(cl, .1), q(cl, .5), q(cl, .9), "W p50", q(pw, .5),
      "power-capped", sum(r[2].endswith("4") for r in busy))
PY
for s in "large 112" "xl 48"; do set -- $s
  timeout 150 $B --out $OUT/r150.jsonl --sizes $1 --batch $2 --variant no_bias --set norm_impl=pallas \
    --patch bench.variants:no_bias --timeout 145 | tail -1
done
