# Call 90 (session 13): call 89's profile of large b112 shows the gated GELU's elementwise
# fusions at ~1.5 TB/s (the forward product 0.315 ms and the backward 0.53 ms per encoder
# layer), where plain adds of the same step run at ~3.1 TB/s, and the `wi_0` GEMM with
# cuBLASLt's `geluaux` epilogue at ~640 TFLOP/s against ~750 for its neighbours. A/B in one
# call, 95 % pool, both norm kernels: today's step against the GELU kept out of the epilogue
# (`bench.variants:gelu_no_epilogue`), large b112 and base b256; the HLO of the GELU's GEMM
# and its consumers.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "large 112 200" "base 256 120"; do
  set -- $s
  $B --out $OUT/r90.jsonl --sizes $1 --batch $2 --variant default --set norm_impl=pallas --timeout $3 \
     --dump-hlo /tmp/hlo90_$1 | tail -1
  $B --out $OUT/r90.jsonl --sizes $1 --batch $2 --variant gelu_no_epilogue --set norm_impl=pallas \
     --patch bench.variants:gelu_no_epilogue --timeout $3 | tail -1
done
f=$(ls /tmp/hlo90_large/*.txt | head -1)
grep -m 3 -i 'gelu' $f | cut -c1-600
grep -m 4 'fused_multiply.47\b\|fused_add_multiply.11\b' $f | cut -c1-600
gzip -c $f > $OUT/hlo90_large.txt.gz
