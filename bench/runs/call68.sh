# Call 68 (session 9): the dS-rows reader kernel with call 67's winning tilings as the
# per-length defaults (`options_for`): model-level gradients on the GPU (vs einsum), the reader
# alone around the winners, per attention, and large b64 steps: Pallas encoder + reader kernel,
# `auto` (cuDNN encoder, XLA reader for the decoder's self-attention), `auto` + reader kernel.
source bench/runs/setup.sh
python3 bench/check_attention.py --impl pallas --input-len 512 --target-len 128 --patch bench.variants:rows_kernel | tail -1
python3 bench/check_attention.py --impl pallas --packed --input-len 512 --target-len 128 --patch bench.variants:rows_kernel | tail -1
timeout 150 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --rows --batch 64 2>&1 | grep --line-buffered '^{' | tee $OUT/r68probe.jsonl | python3 -c "
import json,sys
for l in sys.stdin:
  r = json.loads(l)
  print(json.dumps({k: v for k, v in r.items() if not k.endswith('_err')}))"
$B --out $OUT/r68.jsonl --sizes large --batch 64 --variant pallas_rowskernel --set attention_impl=pallas --patch bench.variants:rows_kernel --timeout 120 | tail -1
$B --out $OUT/r68.jsonl --sizes large --batch 64 --variant auto --timeout 120 | tail -1
$B --out $OUT/r68.jsonl --sizes large --batch 64 --variant auto_rowskernel --patch bench.variants:rows_kernel --timeout 120 | tail -1
