# Call 46 (session 6): batch sizes that the gated GELU's checkpoint (row 54: -5 GB at large
# b64) lets fit on the H100 with today's code, and large b96 (the headline row) again.
source bench/runs/setup.sh
$B --out $OUT/r46.jsonl --sizes large --batch 128 --variant final --timeout 170 | tail -1
$B --out $OUT/r46.jsonl --sizes base --batch 256 --variant final --timeout 110 | tail -1
$B --out $OUT/r46.jsonl --sizes xl --batch 48 --variant final --timeout 170 | tail -1
$B --out $OUT/r46.jsonl --sizes large --batch 96 --variant final --timeout 150 | tail -1
