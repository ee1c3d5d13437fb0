# Call 49 (session 6): the fine-tuning configuration (packed rows, dropout 0.05: the Pallas
# kernel) at the batch sizes that fit in a 95 % memory pool with the gated GELU's checkpoint.
source bench/runs/setup.sh
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r49.jsonl --sizes large --batch 112 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_mem95 --timeout 280 | tail -1
$B --out $OUT/r49.jsonl --sizes xl --batch 48 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_mem95 --timeout 280 | tail -1
