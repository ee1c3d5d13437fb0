# Call 25: final kernel defaults (bias gradient per row, bias read in bf16, 3 pipeline stages):
# per-layer times, then the fine-tuning step for base b64 and large b64.
source bench/runs/setup.sh
PYTHONPATH=. python3 bench/probe_flash_attention.py --check --time --batch 64 2>&1 | tee $OUT/r25.jsonl | grep '"time' | cut -c1-200
grep -c '"ok": true' $OUT/r25.jsonl
P="--packed --set dropout_rate=0.05"
$B --out $OUT/r25b.jsonl --sizes base --batch 64 $P --variant finetune_pallas_final --timeout 150 | tail -1
$B --out $OUT/r25b.jsonl --sizes large --batch 64 --steps 5 $P --variant finetune_pallas_final --timeout 280 | tail -1
