# Call 151 (session 19): call 150's `no_bias` rows measured nothing (the patch reached only the
# cuDNN path, not the kernel's, the default since session 14); again with the patch on both.
# Measurement only (not T5's maths): what the step would take with T5's relative bias free, on
# today's kernels (without a bias the encoder's backward is the dK/dV + dQ kernels).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "large 112" "xl 48"; do set -- $s
  timeout 160 $B --out $OUT/r151.jsonl --sizes $1 --batch $2 --variant no_bias --set norm_impl=pallas \
    --patch bench.variants:no_bias --timeout 155 | tail -1
done
grep -h '"error"' $OUT/r151.jsonl | cut -c1-600
