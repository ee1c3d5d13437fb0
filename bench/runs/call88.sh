# Call 88 (session 12): the headline rows on the session's final code (the default `auto`
# norm, the one-kernel cross-attention backward) with both norm kernels in a 95 % pool: base
# b256, large b112, xl b48.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "base 256 110" "large 112 170" "xl 48 200"; do
  set -- $s
  $B --out $OUT/r88.jsonl --sizes $1 --batch $2 --variant final_pallas_pool95 --set norm_impl=pallas --timeout $3 | tail -1
done
