# Call 69 (session 9): the dS-rows reader kernel as the default (`rows_reader="kernel"`, row
# 74). The kernel against the float32 reference on the GPU (every attention, packed, dropout),
# then the base fine-tuning configuration (packed rows, dropout 0.05: the Pallas kernel on every
# attention) A/B/A: reader kernel / XLA reader (`--patch bench.variants:rows_xla`) / kernel.
source bench/runs/setup.sh
timeout 150 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --check 2>&1 | grep --line-buffered '^{' | tee $OUT/r69check.jsonl | python3 -c "
import json,sys
rows = [json.loads(l) for l in sys.stdin]
print('checks', len(rows), 'all ok', all(r['ok'] for r in rows), 'worst', max(max(r['rel_err'].values()) for r in rows))"
for v in "kernel" "xla --patch bench.variants:rows_xla" "kernel2"; do
  set -- $v
  $B --out $OUT/r69.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft_rows_$1 ${@:2} --timeout 150 | tail -1
done
