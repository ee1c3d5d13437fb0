# Call 103 (session 14): the headline rows on the session's final code (auto: the encoder on
# cuDNN's forward with the Pallas backward, row 95), both norm kernels, 95 % pool, on one
# machine: base b256, large b112, xl b48.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "base 256 120" "large 112 200" "xl 48 230"; do
  set -- $s
  $B --out $OUT/r103.jsonl --sizes $1 --batch $2 --variant final --set norm_impl=pallas --timeout $3 | tail -1
done
