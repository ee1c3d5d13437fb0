# Call 23 (nvidia-h200-x2): the fine-tuning configuration with the Pallas kernels under a mesh
# (the kernel runs per shard through shard_map): data parallel (2, 1) and heads split (1, 2).
source bench/runs/setup.sh
P="--packed --set dropout_rate=0.05"
CUDA_VISIBLE_DEVICES=0 $B --out $OUT/r23.jsonl --sizes base --batch 64 --steps 5 $P --variant finetune_pallas_1gpu --mesh 1,1 --timeout 150 | tail -1
$B --out $OUT/r23.jsonl --sizes base --batch 128 --steps 5 $P --variant finetune_pallas_dp2 --mesh 2,1 --timeout 150 | tail -1
$B --out $OUT/r23.jsonl --sizes base --batch 64 --steps 5 $P --variant finetune_pallas_mp2 --mesh 1,2 --timeout 150 | tail -1
