# Call 33: the optimizer alone on the scanned layout (per layer stack vs one leaf per stack), and
# where the scanned large b64 step (full remat) spends its time with the per-layer optimizer.
source bench/runs/setup.sh
timeout 200 env PYTHONPATH=.:$PYTHONPATH python3 bench/optimizer_step.py --sizes large --scanned --variants adafactor,adafactor_per_leaf --steps 10 | tee $OUT/r33opt.jsonl
$B --out $OUT/r33.jsonl --sizes large --batch 64 --steps 4 --set scan_layers=true --set remat_policy=full --variant scan_prof --profile-dir /tmp/prof33 --dump-hlo /tmp/hlo33 --timeout 200 | tail -1
(cd bench && timeout 150 python3 profile_attribution.py /tmp/prof33 /tmp/hlo33/large_scan_prof.hlo.txt --top 25) > $OUT/r33attr.txt 2>&1; grep -v "^a kernel\|GPU threads" $OUT/r33attr.txt | head -45
