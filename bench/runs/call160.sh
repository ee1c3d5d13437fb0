# Call 160 (session 21): the xl b48 step profiled, to see why its optimizer phase (39.1 ms in
# call 156) takes 13 ms more than the same update alone with bf16 layer gradients (26.2 ms,
# call 159).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
timeout 200 $B --out $OUT/r160.jsonl --sizes xl --batch 48 --steps 5 --variant profile_xl \
  --set norm_impl=pallas --profile-dir /tmp/prof_xl --dump-hlo /tmp/hlo_xl --timeout 195 | tail -1
(cd bench && timeout 150 python3 profile_attribution.py /tmp/prof_xl \
   /tmp/hlo_xl/xl_profile_xl.hlo.txt --top 400) > $OUT/r160attr_xl.txt 2>&1
head -30 $OUT/r160attr_xl.txt
gzip -c /tmp/hlo_xl/xl_profile_xl.hlo.txt > $OUT/xl_step.hlo.txt.gz; ls -la $OUT
