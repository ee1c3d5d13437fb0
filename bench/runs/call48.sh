# Call 48 (session 6): block sizes / warps / stages of the Pallas kernel for the decoder's self
# and cross attention (b64, T5-large heads; NOTES row 58), and where large b64's step goes with
# the gated GELU's checkpoint (profile + attribution, as call 34).
source bench/runs/setup.sh
timeout 300 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --sweep-decoder --batch 64 2>&1 | tee $OUT/r48sweep.jsonl | grep -v "^{" | tail -5
$B --out $OUT/r48.jsonl --sizes large --batch 64 --steps 5 --variant profile_large \
   --profile-dir /tmp/prof48 --dump-hlo /tmp/hlo48 --timeout 200 | tail -1
(cd bench && timeout 120 python3 profile_attribution.py /tmp/prof48 /tmp/hlo48/large_profile_large.hlo.txt \
   --top 60 --json $OUT/r48attr.json) > $OUT/r48attr.txt 2>&1; head -30 $OUT/r48attr.txt
