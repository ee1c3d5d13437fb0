# Call 79 (session 11): where base b256's elementwise time goes, by source line (profile +
# attribution as call 60, today's code), to size a fused RMSNorm (+ residual) kernel; the
# optimized HLO comes back gzipped for reading the norms' fusions.
source bench/runs/setup.sh
$B --out $OUT/r79.jsonl --sizes base --batch 256 --steps 5 --variant profile_base \
   --profile-dir /tmp/prof79 --dump-hlo /tmp/hlo79 --timeout 150 | tail -1
(cd bench && timeout 150 python3 profile_attribution.py /tmp/prof79 /tmp/hlo79/base_profile_base.hlo.txt \
   --top 80 --json $OUT/r79attr.json) > $OUT/r79attr.txt 2>&1; head -30 $OUT/r79attr.txt
gzip -c /tmp/hlo79/base_profile_base.hlo.txt > $OUT/base_b256.hlo.txt.gz
