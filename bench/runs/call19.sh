# Call 19: where the kernel's encoder time goes (forward vs backward, the bias's cost) next to
# cuDNN, T5-large shapes, batch 64.
source bench/runs/setup.sh
PYTHONPATH=. python3 bench/probe_flash_attention.py --breakdown --batch 64 2>&1 | tee $OUT/r19.jsonl | grep -v "^WARNING" | tail -20
