# Call 40 (session 5): model-level gradient parity on the GPU with today's code (cuDNN encoder,
# the final Pallas kernel packed and unpacked, against the einsum path; base, 2 layers), and the
# whole large b64 step with the Pallas kernel for the encoder too (attention_impl=pallas) vs
# auto (cuDNN encoder), in one call.
source bench/runs/setup.sh
python3 bench/check_attention.py | tail -1
python3 bench/check_attention.py --impl pallas --packed --input-len 512 --target-len 128 | tail -3
python3 bench/check_attention.py --impl pallas --input-len 512 --target-len 128 | tail -1
$B --out $OUT/r40.jsonl --sizes large --batch 64 --variant auto --timeout 150 | tail -1
$B --out $OUT/r40.jsonl --sizes large --batch 64 --variant pallas_all --set attention_impl=pallas --timeout 150 | tail -1
