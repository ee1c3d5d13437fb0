# Call 87 (session 12): the cross-attention's backward (no bias) as one kernel per (row, head)
# (`FlashOptions.fused_backward`, new default) instead of the dK/dV and dQ kernels. First the
# kernels against the float32 reference (every attention kind, packed, dropout) and the model's
# gradients against the einsum path; then the cross-attention alone at T5-large's shape b64
# (`--fused`: two kernels / fused with 8 warps / 4 warps / 32-key blocks); then the step A/B:
# large b64 and base b256, `--patch bench.variants:two_kernel_backward` = before.
source bench/runs/setup.sh
timeout 200 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --check 2>&1 | grep --line-buffered '^{' | tee $OUT/r87check.jsonl | python3 -c "
import json,sys
rows = [json.loads(l) for l in sys.stdin]
print('checks', len(rows), 'all ok', all(r['ok'] for r in rows), 'worst', max(max(r['rel_err'].values()) for r in rows))"
python3 bench/check_attention.py --impl pallas --packed --input-len 512 --target-len 128 | tail -1
timeout 150 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --fused 2>&1 | grep '^{' | tee $OUT/r87fused.jsonl
for s in "large 64 150" "base 256 110"; do
  set -- $s
  $B --out $OUT/r87.jsonl --sizes $1 --batch $2 --variant fused_bwd --timeout $3 | tail -1
  $B --out $OUT/r87.jsonl --sizes $1 --batch $2 --variant two_kernels --patch bench.variants:two_kernel_backward --timeout $3 | tail -1
done
