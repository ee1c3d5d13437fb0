# Call 37 (session 5): the final table with today's code: base b64/b128, xl b32, and xl
# fine-tuning (packed rows, dropout 0.05: the Pallas kernel; rows 35's first-kernel figure).
source bench/runs/setup.sh
$B --out $OUT/r37.jsonl --sizes base --batch 64 --variant final --timeout 90 | tail -1
$B --out $OUT/r37.jsonl --sizes base --batch 128 --variant final --timeout 90 | tail -1
$B --out $OUT/r37.jsonl --sizes xl --batch 32 --variant final --timeout 130 | tail -1
$B --out $OUT/r37.jsonl --sizes xl --batch 32 --steps 5 --packed --set dropout_rate=0.05 --variant finetune --timeout 260 | tail -1
