# Call 92 (session 13): the headline rows on this session's code (the cross entropy's one-pass
# backward, NOTES row 88), both norm kernels in a 95 % pool: base b256, large b112, and large
# b120 (row 88 freed 0.9 GB at large b112).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "base 256 110" "large 112 170" "large 120 170"; do
  set -- $s
  $B --out $OUT/r92.jsonl --sizes $1 --batch $2 --variant final_pallas_pool95 --set norm_impl=pallas --timeout $3 | tail -1
done
