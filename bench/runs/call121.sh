# Call 121 (session 16): the fine-tuning configuration (packed, dropout 0.05, default pool and
# norm) at base and large b64, large b64 scanned with full remat (the compile-time row), and xl
# b48 before rows 107-108 (`--patch bench.variants:separate_dkv`, 95 % pool, both norm kernels;
# call 120 has the xl row on today's code).
source bench/runs/setup.sh
$B --out $OUT/r121.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft --timeout 110 | tail -1
$B --out $OUT/r121.jsonl --sizes large --batch 64 --packed --set dropout_rate=0.05 --variant ft --timeout 150 | tail -1
$B --out $OUT/r121.jsonl --sizes large --batch 64 --set scan_layers=true --set remat_policy=full --variant scanned --timeout 150 | tail -1
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r121.jsonl --sizes xl --batch 48 --variant separate_dkv --set norm_impl=pallas --patch bench.variants:separate_dkv --timeout 230 | tail -1
