# Call 67 (session 9): dQ and the bias gradient from one Pallas kernel over the stored dS rows
# (`FlashOptions.rows_reader="kernel"`: each dS element read once) vs XLA's reduction + batched
# GEMM (two reads). The readers alone at the encoder shapes of base b256 / large b64 / xl b48
# with a tiling sweep (errors vs XLA's), per attention (T5-large, b64), then the large b64 step
# with the encoder on the kernel: rows kernel (the probe's best large tiling) / XLA reader /
# `auto` (cuDNN encoder).
source bench/runs/setup.sh
timeout 200 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --rows --batch 64 2>&1 | grep --line-buffered '^{' | tee $OUT/r67probe.jsonl
export ROWS_TILING=$(python3 -c "
import json
for l in open('$OUT/r67probe.jsonl'):
  r = json.loads(l)
  if r.get('probe') == 'rows_reader_ms' and r['size'] == 'large' and r.get('best'):
    print(','.join(x[1:] for x in r['best'].split('_')))" | tail -1)
echo "ROWS_TILING=$ROWS_TILING"
$B --out $OUT/r67.jsonl --sizes large --batch 64 --variant pallas_rowskernel --set attention_impl=pallas --patch bench.variants:rows_kernel --timeout 120 | tail -1
$B --out $OUT/r67.jsonl --sizes large --batch 64 --variant pallas_rowsxla --set attention_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r67.jsonl --sizes large --batch 64 --variant auto --timeout 120 | tail -1
