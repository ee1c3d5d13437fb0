# Call 41 (session 5): where large b64's step goes with the Pallas kernel on the encoder too
# (attention_impl=pallas: 273 ms vs 253.5 ms with cuDNN's encoder in call 40), to compare with
# call 34's profile of auto.
source bench/runs/setup.sh
$B --out $OUT/r41.jsonl --sizes large --batch 64 --steps 5 --variant prof_pallas_all --set attention_impl=pallas \
   --profile-dir /tmp/prof41 --dump-hlo /tmp/hlo41 --timeout 200 | tail -1
(cd bench && timeout 120 python3 profile_attribution.py /tmp/prof41 /tmp/hlo41/large_prof_pallas_all.hlo.txt \
   --top 40 --json $OUT/r41attr.json) > $OUT/r41attr.txt 2>&1; head -75 $OUT/r41attr.txt
