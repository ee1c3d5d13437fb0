# Call 133 (session 18): a profile of the large headline row (b112, 95 % pool, both norm kernels)
# on session 17's final code, attributed by phase and source line (the last large profile was
# call 48, before sessions 9-17): where large's 387 ms go, to pick this session's lever.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r133.jsonl --sizes large --batch 112 --steps 5 --variant profile_large --set norm_impl=pallas \
   --profile-dir /tmp/prof133 --dump-hlo /tmp/hlo133 --timeout 300 | tail -1
cp /tmp/hlo133/large_profile_large.hlo.txt $OUT/ 2>/dev/null; gzip $OUT/*.hlo.txt
(cd bench && timeout 200 python3 profile_attribution.py /tmp/prof133 /tmp/hlo133/large_profile_large.hlo.txt \
   --top 300 --json $OUT/r133attr.json) > $OUT/r133attr.txt 2>&1; head -70 $OUT/r133attr.txt
(cd bench && timeout 100 python3 profile_summary.py /tmp/prof133 --top 60) > $OUT/r133sum.txt 2>&1; head -80 $OUT/r133sum.txt
