# Call 110 (session 15): the block-first launch order (row 99) at xl b48 (95 % pool, both norm
# kernels) and on the fine-tuning configuration (packed, dropout 0.05, default pool and norm),
# where the kernel's forward runs the encoder too (call 108: packed large b64 fwd + bwd 1.54 ms,
# against 1.81 in call 68), A/B in one call (`--patch bench.variants:rows_first` = before).
# (Call 109, every kernel of a base step under Nsight Compute, timed out compiling under ncu.)
source bench/runs/setup.sh
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r110.jsonl --sizes xl --batch 48 --variant blocks_first --set norm_impl=pallas --timeout 200 | tail -1
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r110.jsonl --sizes xl --batch 48 --variant rows_first --set norm_impl=pallas --patch bench.variants:rows_first --timeout 200 | tail -1
$B --out $OUT/r110.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft_blocks_first --timeout 110 | tail -1
$B --out $OUT/r110.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft_rows_first --patch bench.variants:rows_first --timeout 110 | tail -1
$B --out $OUT/r110.jsonl --sizes large --batch 64 --packed --set dropout_rate=0.05 --variant ft_blocks_first --timeout 150 | tail -1
