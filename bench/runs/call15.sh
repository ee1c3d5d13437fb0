# Call 15: the Pallas flash attention kernel (flanjax/flash_attention.py): gradients against the
# float32 reference, per-layer time against einsum and cuDNN at T5-large shapes, block sweep.
source bench/runs/setup.sh
PYTHONPATH=. python3 bench/probe_flash_attention.py --check --time --sweep --batch 64 2>&1 \
  | tee $OUT/r15.jsonl | grep -v "^WARNING" | tail -60
