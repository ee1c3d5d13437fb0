# Call 61 (session 7): the session's final code on the fine-tuning configuration (packed rows,
# dropout 0.05: the Pallas kernel on every attention, dQ from the dS rows) at the batch sizes
# of call 49 (95 % memory pool), and base at b320 in that pool (b256 in the default one is
# the headline row).
source bench/runs/setup.sh
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r61.jsonl --sizes base --batch 320 --variant final7_mem95 --timeout 100 | tail -1
$B --out $OUT/r61.jsonl --sizes large --batch 112 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_final7 --timeout 230 | tail -1
$B --out $OUT/r61.jsonl --sizes xl --batch 48 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_final7 --timeout 240 | tail -1
