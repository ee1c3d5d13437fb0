# Call 70 (session 9): xl b48 (95 % pool) with Adafactor per layer stack (`per_layer`: the
# layers of each unscanned stack stacked and vmapped, the default) vs one leaf per layer
# parameter (`--opt-set stacked_layers=false`). Row 40-41 measured the two at large only; at xl
# the optimizer and metrics are 7 % of the step (row 71) and stacking copies 2.85 B params.
source bench/runs/setup.sh
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r70.jsonl --sizes xl --batch 48 --variant opt_stacked --timeout 200 | tail -1
$B --out $OUT/r70.jsonl --sizes xl --batch 48 --variant opt_per_leaf --opt-set stacked_layers=false --timeout 200 | tail -1
