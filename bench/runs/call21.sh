# Call 21: xl fine-tuning configuration with the Pallas kernels; large fine-tuning scanned with
# full remat (the fast-compile configuration; einsum path: 619.5 ms, 25 s compile, call 13).
source bench/runs/setup.sh
P="--packed --set dropout_rate=0.05"
$B --out $OUT/r21.jsonl --sizes large --batch 64 --steps 5 $P --set scan_layers=true --set remat_policy=full --variant finetune_pallas_scan_full --timeout 150 | tail -1
$B --out $OUT/r21.jsonl --sizes xl --batch 32 --steps 5 $P --variant finetune_pallas --timeout 420 | tail -1
