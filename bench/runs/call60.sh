# Call 60 (session 7): where base b256's step goes (the size nearest its target: profile +
# attribution, as call 48 for large), and base b256 with the encoder on the Pallas kernel
# (dQ from the dS rows, row 65) vs `auto` (cuDNN encoder), A/B in one call.
source bench/runs/setup.sh
$B --out $OUT/r60.jsonl --sizes base --batch 256 --variant auto --timeout 100 | tail -1
$B --out $OUT/r60.jsonl --sizes base --batch 256 --variant enc_pallas_dqrows --set attention_impl=pallas --timeout 100 | tail -1
$B --out $OUT/r60.jsonl --sizes base --batch 256 --steps 5 --variant profile_base \
   --profile-dir /tmp/prof60 --dump-hlo /tmp/hlo60 --timeout 150 | tail -1
(cd bench && timeout 120 python3 profile_attribution.py /tmp/prof60 /tmp/hlo60/base_profile_base.hlo.txt \
   --top 60 --json $OUT/r60attr.json) > $OUT/r60attr.txt 2>&1; head -40 $OUT/r60attr.txt
