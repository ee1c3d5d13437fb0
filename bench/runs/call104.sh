# Call 104 (session 14): the final commit on the GPU after the availability guard and the
# dtype check of FlashOptions.forward="cudnn": the model's gradients against einsum, and auto
# still resolving the encoder to "cudnn_pallas" in a base b256 step (default pool and norm).
source bench/runs/setup.sh
timeout 120 python3 bench/check_attention.py --impl cudnn_pallas --input-len 512 --target-len 128 | tail -1
$B --out $OUT/r104.jsonl --sizes base --batch 256 --variant final_default --timeout 120 | tail -1
python3 -c "import json; d=json.loads(open('$OUT/r104.jsonl').readline()); print(d['attention'], d['decoder_attention'], round(d['mfu'], 4))"
