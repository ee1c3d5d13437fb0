# Call 63 (session 8): where xl's fixed per-step cost goes. xl's step times fit ~9.5-10 ms per
# row plus ~70-90 ms per step (b32 396.7 ms, b48 548.6 ms), against ~13 ms per step for large:
# the optimizer over 2.85B fp32 parameters alone (bench/optimizer_step.py), and a profile of
# xl b48 (95 % pool) attributed by phase.
source bench/runs/setup.sh
timeout 150 python3 bench/optimizer_step.py --sizes xl --variants adafactor,sgd,adafactor_norms --steps 10 2>&1 | grep '^{' | tee $OUT/r63opt.jsonl
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r63.jsonl --sizes xl --batch 48 --steps 5 --variant profile_xl \
   --profile-dir /tmp/prof63 --dump-hlo /tmp/hlo63 --timeout 230 | tail -1
(cd bench && timeout 150 python3 profile_attribution.py /tmp/prof63 /tmp/hlo63/xl_profile_xl.hlo.txt \
   --top 60 --json $OUT/r63attr.json) > $OUT/r63attr.txt 2>&1; head -60 $OUT/r63attr.txt
