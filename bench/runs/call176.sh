# Call 176 (session 23): where the scanned step's +30 % with Adafactor per layer goes (rows 147):
# profiles of T5-large b64 scanned with full remat, OptimizerConfig.scanned_block_rms "layer"
# against the default "stack" (`bench/profile_summary.py`, top kernels of 3 steps each).
source bench/runs/setup.sh
cd .clean
B="python3 bench/train_throughput.py --steps 5 --log-dir $OUT/logs"
for v in layer stack; do
  timeout 170 $B --out $OUT/r176.jsonl --sizes large --batch 64 --set scan_layers=true \
    --set remat_policy=full --opt-set scanned_block_rms=$v --variant rms_$v \
    --profile-dir /tmp/prof_$v --timeout 165 | tail -1
  timeout 100 python3 bench/profile_summary.py /tmp/prof_$v --top 12 > $OUT/prof_$v.txt 2>&1
  head -40 $OUT/prof_$v.txt
done
