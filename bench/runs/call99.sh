# Call 99 (session 14): a profile of the base headline row (b256, 95 % pool, both norm kernels)
# on today's code, attributed by phase: base was last profiled at row 80 (call 79), before the
# norm kernels, the one-kernel cross-attention backward and the cross entropy's one-pass
# backward (rows 80-88). Base is the size nearest its target (40 %: ~282 ms).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r99.jsonl --sizes base --batch 256 --steps 5 --variant profile_base --set norm_impl=pallas \
   --profile-dir /tmp/prof99 --dump-hlo /tmp/hlo99 --timeout 200 | tail -1
(cd bench && timeout 150 python3 profile_attribution.py /tmp/prof99 /tmp/hlo99/base_profile_base.hlo.txt \
   --top 60 --json $OUT/r99attr.json) > $OUT/r99attr.txt 2>&1; head -90 $OUT/r99attr.txt
