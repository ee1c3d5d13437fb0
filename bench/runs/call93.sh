# Call 93 (session 13): xl on this session's code, both norm kernels in a 95 % pool: b48 (the
# headline row) and b56 (if the memory freed by row 88 lets it fit).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "xl 48 230" "xl 56 230"; do
  set -- $s
  $B --out $OUT/r93.jsonl --sizes $1 --batch $2 --variant final_pallas_pool95 --set norm_impl=pallas --timeout $3 | tail -1
done
