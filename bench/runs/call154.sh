# Call 154 (session 20): the norm metrics only on logged / saved steps (`lax.cond` in the step,
# `train(norms_every_step=False)`), A/B on one machine: the default (the step between logged
# steps) against `--norms-every-step` (the step with both norms, as every step before).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "xl 48" "large 112" "base 256"; do set -- $s
  timeout 150 $B --out $OUT/r154.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --timeout 145 | tail -1
  [ $1 = base ] && continue
  timeout 150 $B --out $OUT/r154.jsonl --sizes $1 --batch $2 --variant norms_every_step \
    --set norm_impl=pallas --norms-every-step --timeout 145 | tail -1
done
grep -h '"error"' $OUT/r154.jsonl | cut -c1-600
