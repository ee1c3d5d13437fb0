# Call 163 (session 21): the new grad-norm test on the GPU (the cond's operands bf16, the metric
# the norm of the float32 gradients), and the README's fine-tuning rows (packed, dropout 0.05)
# on this session's code: base b64 and large b64 (default pool and norm), xl b48 (95 % pool).
source bench/runs/setup.sh
python3 -c "import pytest" 2>/dev/null && PYTHONPATH=.:$PYTHONPATH timeout 200 python3 -m pytest -q \
  -p no:cacheprovider tests/test_train.py -k "grad_norm_reads or microbatches" 2>&1 | tail -3
$B --out $OUT/r163.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft --timeout 110 | tail -1
$B --out $OUT/r163.jsonl --sizes large --batch 64 --packed --set dropout_rate=0.05 --variant ft --timeout 150 | tail -1
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r163.jsonl --sizes xl --batch 48 --packed \
  --set dropout_rate=0.05 --set norm_impl=pallas --variant ft --timeout 170 | tail -1
grep -h '"error"' $OUT/r163.jsonl | cut -c1-600
