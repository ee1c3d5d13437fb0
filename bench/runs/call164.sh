# Call 164 (session 21): Adafactor per layer stack (default: the 24 layers' buffers read through
# a fused concatenate, whose bf16 gradient reductions ran at ~1.5 TB/s in call 162's xl profile)
# against one leaf per layer parameter (`stacked_layers=false`), now that the gradients reach the
# optimizer in bf16: the update alone at xl, then xl b48 and large b112 A/B.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
timeout 150 python3 bench/optimizer_step.py --sizes xl --variants adafactor,adafactor_per_leaf \
  --bf16-grads 2>&1 | grep '^{'
for s in "xl 48" "large 112"; do set -- $s
  timeout 170 $B --out $OUT/r164.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --timeout 165 | tail -1
  timeout 170 $B --out $OUT/r164.jsonl --sizes $1 --batch $2 --variant per_leaf \
    --set norm_impl=pallas --opt-set stacked_layers=false --timeout 165 | tail -1
done
grep -h '"error"' $OUT/r164.jsonl | cut -c1-600
