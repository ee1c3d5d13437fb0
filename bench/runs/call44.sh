# Call 44 (session 5): A/B in one call of row 53 in the step: large b64 fine-tuning with the
# Rejected (bench/NOTES.md row 53): the mask skip and the flash_always_mask patch were removed
# after call 44; `--masks` stays in the probe.
# kernel's mask skipped on blocks inside one segment (today) vs always applied (the patch).
source bench/runs/setup.sh
$B --out $OUT/r44.jsonl --sizes large --batch 64 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_always_mask --patch bench.variants:flash_always_mask --timeout 220 | tail -1
$B --out $OUT/r44.jsonl --sizes large --batch 64 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_mask_skip --timeout 220 | tail -1
