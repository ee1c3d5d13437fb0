# Call 155 (session 20): the headline rows on the final code (norm metrics on logged steps only),
# and base's A/B against the step with both norms (`--norms-every-step`).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv,noheader
for s in "xl 48" "large 112" "base 256"; do set -- $s
  timeout 150 $B --out $OUT/r155.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --timeout 145 | tail -1
done
timeout 150 $B --out $OUT/r155.jsonl --sizes base --batch 256 --variant norms_every_step \
  --set norm_impl=pallas --norms-every-step --timeout 145 | tail -1
timeout 150 $B --out $OUT/r155.jsonl --sizes base --batch 256 --set norm_impl=pallas --timeout 145 | tail -1
grep -h '"error"' $OUT/r155.jsonl | cut -c1-600
