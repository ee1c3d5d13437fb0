# Call 47 (session 6): call 46's large b128 and xl b48 ran out of JAX's default pool (75 % of
# the GPU's memory, ~58.6 GiB); here with 95 % (XLA_PYTHON_CLIENT_MEM_FRACTION=0.95).
source bench/runs/setup.sh
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r47.jsonl --sizes xl --batch 48 --variant mem95 --timeout 180 | tail -1
$B --out $OUT/r47.jsonl --sizes large --batch 128 --variant mem95 --timeout 180 | tail -1
$B --out $OUT/r47.jsonl --sizes large --batch 112 --variant mem95 --timeout 180 | tail -1
