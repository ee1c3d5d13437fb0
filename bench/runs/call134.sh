# Call 134 (session 18): a profile of the xl headline row (b48, 95 % pool, both norm kernels) on
# session 17's final code (the last xl profile was call 63, session 8): the optimizer's share
# (call 63: 38.7 ms of 547) beside the attention's and the gated GELU's.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r134.jsonl --sizes xl --batch 48 --steps 5 --variant profile_xl --set norm_impl=pallas \
   --profile-dir /tmp/prof134 --dump-hlo /tmp/hlo134 --timeout 300 | tail -1
cp /tmp/hlo134/xl_profile_xl.hlo.txt $OUT/ 2>/dev/null; gzip $OUT/*.hlo.txt
(cd bench && timeout 200 python3 profile_attribution.py /tmp/prof134 /tmp/hlo134/xl_profile_xl.hlo.txt \
   --top 300 --json $OUT/r134attr.json) > $OUT/r134attr.txt 2>&1; head -70 $OUT/r134attr.txt
(cd bench && timeout 100 python3 profile_summary.py /tmp/prof134 --top 60) > $OUT/r134sum.txt 2>&1; head -80 $OUT/r134sum.txt
