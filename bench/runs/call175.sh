# Call 175 (session 23): call 174 put Adafactor's per-layer block RMS on the scanned stack at
# +89 ms a step (375 against 286.5 ms, T5-large b64 scanned, full remat). Two other ways to
# write the same per-layer reduction, against the axes-1..n mean, in one call.
source bench/runs/setup.sh
cd .clean
B="python3 bench/train_throughput.py --steps 10 --log-dir $OUT/logs"
run() { timeout 170 $B --out $OUT/r175.jsonl --sizes large --batch 64 --set scan_layers=true \
  --set remat_policy=full --timeout 165 "$@" | tail -1; }
run --variant reshape --patch bench.variants:per_layer_rms_reshape
run --variant vmap --patch bench.variants:per_layer_rms_vmap
run --variant stack_rms --patch bench.variants:stack_rms_scanned
