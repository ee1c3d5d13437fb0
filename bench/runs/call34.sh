# Call 34 (session 5): the headroom of a Hopper (FA3-style) attention kernel: JAX's Mosaic GPU
# attention (no bias) against cuDNN and flanjax's Pallas kernel at T5-large's shapes; and where
# large b64's step goes with today's defaults (optimizer per stack, decoder on the kernel).
source bench/runs/setup.sh
timeout 240 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --mgpu --batch 64 2>&1 | tee $OUT/r34mgpu.jsonl
$B --out $OUT/r34.jsonl --sizes large --batch 64 --steps 5 --variant profile_large \
   --profile-dir /tmp/prof34 --dump-hlo /tmp/hlo34 --timeout 200 | tail -1
(cd bench && timeout 120 python3 profile_attribution.py /tmp/prof34 /tmp/hlo34/large_profile_large.hlo.txt \
   --top 40 --json $OUT/r34attr.json) > $OUT/r34attr.txt 2>&1; head -80 $OUT/r34attr.txt
