# Call 166 (session 21): Adafactor per group of 8 layers (`bench.variants:layer_groups_8`, the
# fastest group alone at xl in call 165) against the whole stack at once, large b112 and base
# b256 A/B in one call.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "large 112" "base 256"; do set -- $s
  timeout 150 $B --out $OUT/r166.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --timeout 145 | tail -1
  timeout 150 $B --out $OUT/r166.jsonl --sizes $1 --batch $2 --variant groups_8 \
    --set norm_impl=pallas --patch bench.variants:layer_groups_8 --timeout 145 | tail -1
done
grep -h '"error"' $OUT/r166.jsonl | cut -c1-600
