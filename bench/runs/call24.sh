# Call 24: the bias gradient stored per row (bias_grad="rows": fully parallel dK/dV grid, dS in
# bf16, summed over rows by XLA) against the in-place sums of calls 15-20; checks again.
source bench/runs/setup.sh
PYTHONPATH=. python3 bench/probe_flash_attention.py --check --time --sweep --breakdown --batch 64 2>&1 | tee $OUT/r24.jsonl | grep -v "^WARNING" | grep -v '"check"' | tail -40
grep -c '"ok": true' $OUT/r24.jsonl
