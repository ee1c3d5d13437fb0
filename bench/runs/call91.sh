# Call 91 (session 13): the cross entropy's hand-written backward (one elementwise pass from the
# float32 logits to the bf16 cotangent; flanjax/losses.py) against autodiff of the same forward
# (`bench.variants:ce_autodiff`: call 89's profile of large b112 shows a float32 softmax pass, a
# scatter of the one-hot term and a cast, ~3 ms), A/B in one call, 95 % pool, both norm kernels:
# base b256 (the size nearest its target, with 2.3x large's logits per step) and large b112;
# the loss's fusions in the new HLO.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "base 256 120" "large 112 200"; do
  set -- $s
  $B --out $OUT/r91.jsonl --sizes $1 --batch $2 --variant ce_vjp --set norm_impl=pallas --timeout $3 \
     --dump-hlo /tmp/hlo91_$1 | tail -1
  $B --out $OUT/r91.jsonl --sizes $1 --batch $2 --variant ce_autodiff --set norm_impl=pallas \
     --patch bench.variants:ce_autodiff --timeout $3 | tail -1
done
f=$(ls /tmp/hlo91_base/*.txt | head -1)
grep -E '^\s*%[a-z_.0-9]+ = [a-z0-9]+\[256,128,32128\]' $f | grep -v '^\s*%param\|bitcast' | cut -c1-260 | head -20
