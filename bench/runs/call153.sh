# Call 153 (session 20): what the grad_norm / param_norm metrics cost the step, as a bound
# (`--patch bench.variants:no_norm_metrics`: both read 0), A/B against today's step on one machine.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm --format=csv,noheader
for s in "xl 48" "large 112"; do set -- $s
  timeout 150 $B --out $OUT/r153.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --timeout 145 | tail -1
  timeout 150 $B --out $OUT/r153.jsonl --sizes $1 --batch $2 --variant no_norm_metrics \
    --set norm_impl=pallas --patch bench.variants:no_norm_metrics --timeout 145 | tail -1
done
grep -h '"error"' $OUT/r153.jsonl | cut -c1-600
