# Call 20: the bias gradient's in-place accumulation: batch groups, warps, and issuing the
# block's load early (encoder, T5-large shapes, batch 64); then the kernels' checks again.
source bench/runs/setup.sh
PYTHONPATH=. python3 bench/probe_flash_attention.py --sweep --check --batch 64 2>&1 | tee $OUT/r20.jsonl | grep -v "^WARNING" | tail -40
