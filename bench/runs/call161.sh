# Call 161 (session 21): the grad-norm cond takes the unscanned layers' kernel gradients in bf16
# (`train._norm_view`), so XLA no longer writes float32 copies of them every step (call 160's
# HLO: the cond's operands were the float32 gradients). A/B on one machine against
# `--patch bench.variants:norms_of_f32_grads` (before), xl b48 and large b112; then base b256.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "xl 48" "large 112"; do set -- $s
  timeout 150 $B --out $OUT/r161.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --timeout 145 | tail -1
  timeout 150 $B --out $OUT/r161.jsonl --sizes $1 --batch $2 --variant norms_of_f32_grads \
    --set norm_impl=pallas --patch bench.variants:norms_of_f32_grads --timeout 145 | tail -1
done
timeout 120 $B --out $OUT/r161.jsonl --sizes base --batch 256 --set norm_impl=pallas --timeout 115 | tail -1
grep -h '"error"' $OUT/r161.jsonl | cut -c1-600
