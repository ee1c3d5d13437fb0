# Call 13: fused-path regression check; the fine-tuning configuration (packed, dropout 0.05)
# with T5X's bf16 attention scores (run then as the patch bench.variants:bf16_scores, now this
# flag), and large fine-tuning scanned with full remat (the compile-time configuration).
source bench/runs/setup.sh
python3 bench/check_attention.py | tail -1
P="--packed --set dropout_rate=0.05"
$B --out $OUT/r13.jsonl --sizes base --batch 64 $P --set float32_attention_logits=false --variant "finetune bf16_scores" --timeout 110 | tail -1
$B --out $OUT/r13.jsonl --sizes large --batch 64 --steps 5 $P --set scan_layers=true --set remat_policy=full --variant "finetune scan+full" --timeout 150 | tail -1
