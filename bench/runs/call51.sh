# Call 51 (session 6): is call 50's scanned large b64 (319.8 ms vs 310 ms in call 36) the GELU
# checkpoint nested in the layer's full remat? A/B/A in one call (`gelu_saved` = before).
source bench/runs/setup.sh
$B --out $OUT/r51.jsonl --sizes large --batch 64 --set scan_layers=true --set remat_policy=full --variant scan_gelu_ckpt --timeout 120 | tail -1
$B --out $OUT/r51.jsonl --sizes large --batch 64 --set scan_layers=true --set remat_policy=full --variant scan_gelu_saved --patch bench.variants:gelu_saved --timeout 120 | tail -1
$B --out $OUT/r51.jsonl --sizes large --batch 64 --set scan_layers=true --set remat_policy=full --variant scan_gelu_ckpt_again --timeout 120 | tail -1
