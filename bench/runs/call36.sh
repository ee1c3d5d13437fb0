# Call 36 (session 5): the train step's grad/param norms on the optimizer's stacked copies
# (optimizers.tree_norm, shared with per_layer by XLA's CSE) vs one reduction per leaf (the
# patch), large b64, A/B/A in one call; then large b96 (the headline row) with today's code.
source bench/runs/setup.sh
$B --out $OUT/r36.jsonl --sizes large --batch 64 --variant stacked_norms --timeout 150 | tail -1
$B --out $OUT/r36.jsonl --sizes large --batch 64 --variant per_leaf_norms --patch bench.variants:per_leaf_norms --timeout 150 | tail -1
$B --out $OUT/r36.jsonl --sizes large --batch 64 --variant stacked_norms_again --timeout 150 | tail -1
$B --out $OUT/r36.jsonl --sizes large --batch 96 --variant final --timeout 170 | tail -1
