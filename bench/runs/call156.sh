# Call 156 (session 20): profiles of the xl and large headline rows on the final code (norm
# metrics on logged steps only): where the time goes now (calls 133-134 were session 17's code).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "xl 48" "large 112"; do set -- $s
  timeout 200 $B --out $OUT/r156.jsonl --sizes $1 --batch $2 --steps 5 --variant profile_$1 \
    --set norm_impl=pallas --profile-dir /tmp/prof_$1 --dump-hlo /tmp/hlo_$1 --timeout 195 | tail -1
  (cd bench && timeout 100 python3 profile_attribution.py /tmp/prof_$1 /tmp/hlo_$1/$1_profile_$1.hlo.txt \
     --top 300 --json $OUT/r156attr_$1.json) > $OUT/r156attr_$1.txt 2>&1; head -45 $OUT/r156attr_$1.txt
done
