# Call 8: the final figures with flanjax's own code (no patches), harness defaults.
source bench/runs/setup.sh
python3 bench/check_attention.py | tail -3
$B --out $OUT/r8.jsonl --sizes base --variant final | tail -1
$B --out $OUT/r8.jsonl --sizes large --batch 96 --steps 6 --variant final | tail -1
$B --out $OUT/r8.jsonl --sizes xl --batch 32 --steps 6 --variant final --timeout 200 | tail -1
