# Call 26 (session 4): where large's step time goes by phase (forward / backward / optimizer),
# the optimizer alone, and large b128 unpacked.
source bench/runs/setup.sh
PYTHONPATH=. python3 bench/optimizer_step.py --sizes base,large | tee $OUT/r26opt.jsonl
$B --out $OUT/r26.jsonl --sizes large --batch 64 --steps 5 --variant profile_large \
   --profile-dir /tmp/prof26 --dump-hlo /tmp/hlo26 --timeout 280 | tail -1
(cd bench && python3 profile_attribution.py /tmp/prof26 /tmp/hlo26/large_profile_large.hlo.txt \
   --top 60 --json $OUT/r26attr.json) 2>&1 | tee $OUT/r26attr.txt | head -120
python3 bench/profile_summary.py /tmp/prof26 --top 30 | tee $OUT/r26sum.txt | head -45
$B --out $OUT/r26.jsonl --sizes large --batch 128 --steps 4 --variant large_b128 --timeout 280 | tail -1
