# Call 95 (session 13): the final cross entropy backward (the softmax from the forward's max and
# sum, as autodiff of logsumexp forms it; calls 91-92 ran exp(x - log Z), 3x less accurate on
# the CPU) against autodiff (`bench.variants:ce_autodiff`), A/B in one call, 95 % pool, both
# norm kernels: base b256 and large b112.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "base 256 120" "large 112 200"; do
  set -- $s
  $B --out $OUT/r95.jsonl --sizes $1 --batch $2 --variant ce_vjp --set norm_impl=pallas --timeout $3 | tail -1
  $B --out $OUT/r95.jsonl --sizes $1 --batch $2 --variant ce_autodiff --set norm_impl=pallas \
     --patch bench.variants:ce_autodiff --timeout $3 | tail -1
done
