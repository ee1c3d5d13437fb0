# Call 16: the fine-tuning configuration (packed rows, dropout 0.05) through the Pallas flash
# attention (attention_impl=auto now picks it for packed rows / dropout on GPUs), against the
# einsum path of calls 12-13; and the unpacked benchmark with the kernel forced, against cuDNN.
source bench/runs/setup.sh
P="--packed --set dropout_rate=0.05"
$B --out $OUT/r16.jsonl --sizes base --batch 64 $P --variant "finetune pallas" --timeout 110 | tail -1
$B --out $OUT/r16.jsonl --sizes large --batch 64 --steps 5 $P --variant "finetune pallas" --timeout 200 | tail -1
$B --out $OUT/r16.jsonl --sizes large --batch 96 --steps 5 $P --variant "finetune pallas" --timeout 200 | tail -1
$B --out $OUT/r16.jsonl --sizes large --batch 96 --steps 5 --set attention_impl=pallas --variant "unpacked pallas" --timeout 200 | tail -1
$B --out $OUT/r16.jsonl --sizes xl --batch 32 --steps 5 $P --variant "finetune pallas" --timeout 200 | tail -1
