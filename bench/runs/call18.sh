# Call 18: large fine-tuning configuration (packed rows, dropout 0.05) with the Pallas kernels;
# the einsum path needed remat_policy=attention to fit b64 (553.7 ms, call 12).
source bench/runs/setup.sh
P="--packed --set dropout_rate=0.05"
$B --out $OUT/r18.jsonl --sizes large --batch 64 --steps 5 $P --variant finetune_pallas --timeout 280 | tail -1
$B --out $OUT/r18.jsonl --sizes large --batch 96 --steps 5 $P --variant finetune_pallas --timeout 280 | tail -1
