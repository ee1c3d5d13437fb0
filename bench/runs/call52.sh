# Call 52 (session 6): after call 51, the feed-forward uses the checkpointed GELU only without
# layer remat. Scanned + full remat should be back at call 51's 313 ms; unscanned keeps 41.6 GB.
source bench/runs/setup.sh
$B --out $OUT/r52.jsonl --sizes large --batch 64 --set scan_layers=true --set remat_policy=full --variant final6 --timeout 120 | tail -1
$B --out $OUT/r52.jsonl --sizes large --batch 64 --variant final6 --timeout 150 | tail -1
