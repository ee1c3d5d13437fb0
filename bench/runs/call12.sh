# Call 12: the fine-tuning configuration (packed rows, dropout 0.05: the einsum attention path)
# with and without remat_policy=attention (recompute the [b, h, q, k] scores in the backward).
source bench/runs/setup.sh
P="--packed --set dropout_rate=0.05"
$B --out $OUT/r12.jsonl --sizes base --batch 64 $P --variant "finetune none" --timeout 110 | tail -1
$B --out $OUT/r12.jsonl --sizes base --batch 64 $P --set remat_policy=attention --variant "finetune attention" --timeout 110 | tail -1
$B --out $OUT/r12.jsonl --sizes large --batch 64 --steps 5 $P --set remat_policy=attention --variant "finetune attention" --timeout 240 | tail -1
$B --out $OUT/r12.jsonl --sizes large --batch 64 --steps 5 --packed --set remat_policy=attention --variant "packed attention" --timeout 200 | tail -1
