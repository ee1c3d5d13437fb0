# Call 177 (session 24): why Adafactor's per-layer block RMS costs +30 % of the scanned step
# (NOTES rows 147, 149). T5-large b64 scanned with full remat: "layer", "stack" and "layer"
# written as two reductions (`bench.variants:per_layer_rms_two_stage`), each profiled (3 steps)
# with its optimized HLO dumped from the same compile, so the profile's fusion names are the HLO's.
source bench/runs/setup.sh
cd .clean
B="python3 bench/train_throughput.py --steps 10 --log-dir /tmp/logs"
run() { name=$1; shift
  timeout 190 $B --out $OUT/r177.jsonl --sizes large --batch 64 --set scan_layers=true \
    --set remat_policy=full --variant $name --profile-dir /tmp/prof_$name \
    --dump-hlo /tmp/hlo_$name --timeout 185 "$@" | tail -1
  timeout 100 python3 bench/profile_summary.py /tmp/prof_$name --top 16 > $OUT/prof_$name.txt 2>&1
  head -45 $OUT/prof_$name.txt
  gzip -c /tmp/hlo_$name/*.hlo.txt > $OUT/hlo_$name.txt.gz; ls -la $OUT
}
run layer --opt-set scanned_block_rms=layer
run stack
run two --opt-set scanned_block_rms=layer --patch bench.variants:per_layer_rms_two_stage
