# Call 157 (session 20): the gradients of the normalised loss (no division pass over every
# gradient, which call 156's xl profile showed materialised: `loop_divide_fusion`s, ~4 ms),
# A/B on one machine against `--patch bench.variants:grads_divided` (before).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "xl 48" "large 112"; do set -- $s
  timeout 150 $B --out $OUT/r157.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --timeout 145 | tail -1
  timeout 150 $B --out $OUT/r157.jsonl --sizes $1 --batch $2 --variant grads_divided \
    --set norm_impl=pallas --patch bench.variants:grads_divided --timeout 145 | tail -1
done
grep -h '"error"' $OUT/r157.jsonl | cut -c1-600
