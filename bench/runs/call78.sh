# Call 78 (session 11): today's code (hashed dropout masks) on call 77's machine: large
# fine-tuning b64 (call 77 ran the old code there: 256.3 ms, 181.1 s compile), then xl
# fine-tuning b48 in a 95 % pool (call 75: 540.7 ms, 49.1 %, 160 s compile).
source bench/runs/setup.sh
FT="--packed --set dropout_rate=0.05"
$B --out $OUT/r78.jsonl --sizes large --batch 64 $FT --variant ft_hash --timeout 280 | tail -1
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r78.jsonl --sizes xl --batch 48 $FT --variant ft_hash --timeout 300 | tail -1
