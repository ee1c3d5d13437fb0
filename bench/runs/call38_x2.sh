# Call 38 (nvidia-h200-x2, session 5): scaling of T5-large (unpacked 512/128, today's defaults):
# one GPU b64, data parallel (2, 1) at b128 (64 rows per GPU), heads split (1, 2) at b64.
source bench/runs/setup.sh
CUDA_VISIBLE_DEVICES=0 $B --out $OUT/r38.jsonl --sizes large --batch 64 --variant large_1gpu --mesh 1,1 --timeout 150 | tail -1
$B --out $OUT/r38.jsonl --sizes large --batch 128 --variant large_dp2 --mesh 2,1 --timeout 170 | tail -1
$B --out $OUT/r38.jsonl --sizes large --batch 64 --variant large_mp2 --mesh 1,2 --timeout 170 | tail -1
