# Call 124 (session 17): the gated GELU's fused backward kernel (flanjax/gated_gelu.py,
# T5Config.mlp_impl): the kernel against a float32 reference and XLA's backward at the encoder
# MLP shapes, with a tiling sweep, then base b256 and large b112 A/B in one call (95 % pool,
# both norm kernels; `--set mlp_impl=xla` = before).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
PYTHONPATH=.:$PYTHONPATH timeout 200 python3 bench/probe_gated_gelu.py --sweep 2>&1 | tee $OUT/probe124.jsonl | grep -v "^ \|^Trace\|^  File" | tail -40
$B --out $OUT/r124.jsonl --sizes base --batch 256 --variant mlp_kernel --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r124.jsonl --sizes base --batch 256 --variant mlp_xla --set norm_impl=pallas --set mlp_impl=xla --timeout 120 | tail -1
$B --out $OUT/r124.jsonl --sizes large --batch 112 --variant mlp_kernel --set norm_impl=pallas --timeout 150 | tail -1
$B --out $OUT/r124.jsonl --sizes large --batch 112 --variant mlp_xla --set norm_impl=pallas --set mlp_impl=xla --timeout 150 | tail -1
