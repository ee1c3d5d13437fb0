# Call 65 (session 8): what the step's ~500 `memcpy128` kernels copy (xl: 11.2 ms/step, call 63;
# base ~7 ms, call 60): the optimized HLO of base b64 (gzipped back) and a 3-step profile whose
# top kernels name them.
source bench/runs/setup.sh
$B --out $OUT/r65.jsonl --sizes base --batch 64 --steps 3 --variant hlo_base \
   --profile-dir /tmp/prof65 --dump-hlo /tmp/hlo65 --timeout 150 | tail -1
gzip -c /tmp/hlo65/base_hlo_base.hlo.txt > $OUT/base_hlo65.txt.gz
(cd bench && timeout 120 python3 profile_attribution.py /tmp/prof65 /tmp/hlo65/base_hlo_base.hlo.txt \
   --top 40) > $OUT/r65attr.txt 2>&1; grep -i "memcpy\|copy" $OUT/r65attr.txt | head -20
grep -c " copy(" /tmp/hlo65/base_hlo_base.hlo.txt; grep -c "copy-start" /tmp/hlo65/base_hlo_base.hlo.txt
