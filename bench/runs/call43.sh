# Call 43 (session 5): the kernel skips the per-element mask on blocks that lie inside one
# Rejected (bench/NOTES.md row 53): the mask skip and the flash_always_mask patch were removed
# after call 44; `--masks` stays in the probe.
# segment and on or below the causal diagonal. Per attention (before: call 42's "hoist": false
# rows, rows 39/47) and in the step: large b64 fine-tuning (row 44: 271.4 ms; call 42: 275.3)
# and large b64 unpacked with auto (decoder on the kernel with all-ones segments; call 40: 253.5).
source bench/runs/setup.sh
timeout 170 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --masks --batch 64 2>&1 | grep --line-buffered '^{' | tee $OUT/r43probe.jsonl
$B --out $OUT/r43.jsonl --sizes large --batch 64 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_masks --timeout 230 | tail -1
$B --out $OUT/r43.jsonl --sizes large --batch 64 --variant auto_masks --timeout 130 | tail -1
