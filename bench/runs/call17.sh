# Call 17: compile time of the fine-tuning step with the Pallas kernels (call 16 timed out at
# 110 s), base b64, unscanned and scanned.
source bench/runs/setup.sh
P="--packed --set dropout_rate=0.05"
$B --out $OUT/r17.jsonl --sizes base --batch 64 $P --variant finetune_pallas --timeout 280 | tail -1
$B --out $OUT/r17.jsonl --sizes base --batch 64 $P --set scan_layers=true --variant finetune_pallas_scan --timeout 150 | tail -1
tail -5 "$OUT/logs/"*finetune_pallas.log
