# Call 130 (session 17): xl b48 on the session's code against the tanh-form GELU
# (`--patch bench.variants:gelu_tanh`), 95 % pool, both norm kernels; the fine-tuning rows
# (packed, dropout 0.05, default pool and norm) at base b64 and large b64.
source bench/runs/setup.sh
$B --out $OUT/r130.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft --timeout 110 | tail -1
$B --out $OUT/r130.jsonl --sizes large --batch 64 --packed --set dropout_rate=0.05 --variant ft --timeout 150 | tail -1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r130.jsonl --sizes xl --batch 48 --variant final --set norm_impl=pallas --timeout 200 | tail -1
$B --out $OUT/r130.jsonl --sizes xl --batch 48 --variant gelu_tanh --patch bench.variants:gelu_tanh --set norm_impl=pallas --timeout 200 | tail -1
