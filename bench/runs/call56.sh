# Call 56 (session 6): the headline rows again on the final code of the session (after row 63's
# kv lengths): large b112 and xl b48 in a 95 % memory pool, base b256 in the default pool.
source bench/runs/setup.sh
$B --out $OUT/r56.jsonl --sizes base --batch 256 --variant final6b --timeout 110 | tail -1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r56.jsonl --sizes large --batch 112 --variant final6b --timeout 170 | tail -1
$B --out $OUT/r56.jsonl --sizes xl --batch 48 --variant final6b --timeout 180 | tail -1
