# Call 82 (session 12): first the attention kernel after session 11's review mends (the dropout
# mask from global rows and heads, the key index mixed by a multiply; checked on CPU only) against
# the float32 reference on the GPU, every attention kind, packed, dropout; and the model's
# gradients against the einsum path (packed). Then base b256 in the default pool, A/B in one
# call: today's default; the fused backward norm kernel with XLA's forward norm
# (`norm_xla_forward`, NOTES row 80's follow-up); bf16 logits from the output GEMM
# (`logits_bf16`); the accuracy metric from the log-sum-exp's max (`correct_from_max`).
source bench/runs/setup.sh
timeout 200 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --check 2>&1 | grep --line-buffered '^{' | tee $OUT/r82check.jsonl | python3 -c "
import json,sys
rows = [json.loads(l) for l in sys.stdin]
print('checks', len(rows), 'all ok', all(r['ok'] for r in rows), 'worst', max(max(r['rel_err'].values()) for r in rows))"
python3 bench/check_attention.py --impl pallas --packed --input-len 512 --target-len 128 | tail -1
for v in "default" "norm_xla_fwd --set norm_impl=pallas --patch bench.variants:norm_xla_forward" \
         "logits_bf16 --patch bench.variants:logits_bf16" "correct_from_max --patch bench.variants:correct_from_max"; do
  set -- $v
  $B --out $OUT/r82.jsonl --sizes base --batch 256 --variant $1 ${@:2} --timeout 110 | tail -1
done
