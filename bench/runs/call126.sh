# Call 126 (session 17): the loss's forward statistics in one read of the float32 logits
# (`losses.row_statistics`, on by default on GPUs; `--patch bench.variants:loss_xla` = before):
# more one-row tilings, then base b256 and large b112 A/B in one call (95 % pool, both norm
# kernels).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
PYTHONPATH=.:$PYTHONPATH timeout 150 python3 bench/probe_loss.py --sweep 2>&1 | tee $OUT/probe126.jsonl | grep -v "^ \|^Trace\|^  File" | tail -20
$B --out $OUT/r126.jsonl --sizes base --batch 256 --variant loss_kernel --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r126.jsonl --sizes base --batch 256 --variant loss_xla --patch bench.variants:loss_xla --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r126.jsonl --sizes large --batch 112 --variant loss_kernel --set norm_impl=pallas --timeout 150 | tail -1
$B --out $OUT/r126.jsonl --sizes large --batch 112 --variant loss_xla --patch bench.variants:loss_xla --set norm_impl=pallas --timeout 150 | tail -1
