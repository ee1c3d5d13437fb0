# Call 42 (session 5): the kernel's operands loaded before the segment-skip branch
# (FlashOptions.hoist_loads, new default) vs inside it (before): per layer, and in the step:
# large b64 with the kernel on the encoder too (call 40/41: 273.0/275.7 ms) and the large b64
# fine-tuning configuration (row 44: 271.4 ms). Rejected (bench/NOTES.md row 52): the option
# and the probe's --hoist were removed after this call, so this script no longer runs as is.
source bench/runs/setup.sh
timeout 200 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --hoist --batch 64 2>&1 | grep --line-buffered '^{' | tee $OUT/r42probe.jsonl
$B --out $OUT/r42.jsonl --sizes large --batch 64 --variant pallas_all_hoist --set attention_impl=pallas --timeout 130 | tail -1
$B --out $OUT/r42.jsonl --sizes large --batch 64 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_hoist --timeout 230 | tail -1
