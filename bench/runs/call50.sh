# Call 50 (session 6): the scanned compile-time configuration and base b64 with the gated GELU's
# checkpoint (nested inside the layer's remat when scanned), against rows 48's 310 ms / 90.3 ms.
source bench/runs/setup.sh
$B --out $OUT/r50.jsonl --sizes large --batch 64 --set scan_layers=true --set remat_policy=full --variant final6 --timeout 150 | tail -1
$B --out $OUT/r50.jsonl --sizes base --batch 64 --variant final6 --timeout 100 | tail -1
