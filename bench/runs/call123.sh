# Call 123 (session 17): a profile of the base headline row (b256, 95 % pool, both norm kernels)
# on session 16's code (call 99 was the last, before rows 95-108), attributed by phase and source
# line, plus every kernel that touches the [256, 128, 32128] logits (the loss's passes, ~5.7 ms
# in call 99) with its time, to see what a one-pass loss could take off.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r123.jsonl --sizes base --batch 256 --steps 5 --variant profile_base --set norm_impl=pallas \
   --profile-dir /tmp/prof123 --dump-hlo /tmp/hlo123 --timeout 200 | tail -1
cp /tmp/hlo123/base_profile_base.hlo.txt $OUT/ 2>/dev/null; gzip $OUT/*.hlo.txt
(cd bench && timeout 150 python3 profile_attribution.py /tmp/prof123 /tmp/hlo123/base_profile_base.hlo.txt \
   --top 300 --json $OUT/r123attr.json) > $OUT/r123attr.txt 2>&1; head -60 $OUT/r123attr.txt
grep -E "32128|bf16\[131072,768\]|copy" $OUT/r123attr.txt | head -60
