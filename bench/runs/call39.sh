# Call 39 (session 5): the peer side by side with today's code in one run (base b64: flanjax, HF
# eager, HF torch.compile), and batched greedy decoding vs HF generate with today's code.
source bench/runs/setup.sh
python3 bench/decode_throughput.py --size base --batch 64 --out $OUT/d39.jsonl --timeout 200 2>&1 | grep --line-buffered -v Warning | tail -5
$B --out $OUT/r39.jsonl --sizes base --batch 64 --systems flanjax,hf_eager,hf_compile --variant peers --timeout 250 | tail -4
