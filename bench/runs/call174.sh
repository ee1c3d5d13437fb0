# Call 174 (session 23): call 173's scanned T5-large (b64, full remat) ran 374.5 ms against
# call 121's 292 ms: A/B/A in one call of Adafactor's per-layer block RMS on the scanned stack
# (now) against the whole-stack RMS before (`--patch bench.variants:stack_rms_scanned`).
source bench/runs/setup.sh
cd .clean
B="python3 bench/train_throughput.py --steps 10 --log-dir $OUT/logs"
run() { timeout 170 $B --out $OUT/r174.jsonl --sizes large --batch 64 --set scan_layers=true \
  --set remat_policy=full --timeout 165 "$@" | tail -1; }
run --variant per_layer_rms
run --variant stack_rms --patch bench.variants:stack_rms_scanned
run --variant per_layer_rms2
