# Call 45 (session 6): large b64, A/B of two step changes in one call (bench/NOTES.md rows
# 54-55): the gated GELU under jax.checkpoint (keeps gate and lin only; `gelu_saved` patches
# the old code back) and the param norm on logged steps only (`--param-norm`: every step, as
# before). First and last runs are the old and the new step.
source bench/runs/setup.sh
$B --out $OUT/r45.jsonl --sizes large --batch 64 --variant old --patch bench.variants:gelu_saved --param-norm --timeout 150 | tail -1
$B --out $OUT/r45.jsonl --sizes large --batch 64 --variant gelu_ckpt_only --param-norm --timeout 150 | tail -1
$B --out $OUT/r45.jsonl --sizes large --batch 64 --variant lazy_norm_only --patch bench.variants:gelu_saved --timeout 150 | tail -1
$B --out $OUT/r45.jsonl --sizes large --batch 64 --variant new --timeout 150 | tail -1
# Row 55 (norms on logged steps only) gave no gain and was reverted after this call: the
# `--param-norm` flag it used is gone; `gelu_saved` stays in bench/variants.py.
