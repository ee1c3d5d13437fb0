# Call 31: the fine-tuning configuration (packed rows, dropout 0.05: Pallas attention) and the
# fast-compile configuration (scan + full remat) of large b64 with the optimizer per layer stack.
source bench/runs/setup.sh
$B --out $OUT/r31.jsonl --sizes large --batch 64 --steps 5 --packed --set dropout_rate=0.05 --variant finetune4 --timeout 280 | tail -1
$B --out $OUT/r31.jsonl --sizes large --batch 64 --set scan_layers=true --set remat_policy=full --variant scan_full4 --timeout 200 | tail -1
