# Call 129 (session 17): the session's code on the GPU: kernel checks against float32, the
# model's gradients against einsum (now with the loss statistics kernel and the sigmoid-form
# GELU), base b256 headline (95 % pool, both norm kernels) and every default, and large b112
# A/B against the tanh-form GELU (`--patch bench.variants:gelu_tanh`; call 128 had large
# +0.4 % with the sigmoid form).
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --check > $OUT/check129.jsonl 2>&1
echo "kernel checks ok: $(grep -c '"ok": true' $OUT/check129.jsonl), failed: $(grep -c '"ok": false' $OUT/check129.jsonl)"
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl pallas --packed 2>&1 | tail -1
$B --out $OUT/r129.jsonl --sizes base --batch 256 --variant final_default --timeout 120 | tail -1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r129.jsonl --sizes base --batch 256 --variant final --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r129.jsonl --sizes large --batch 112 --variant final --set norm_impl=pallas --timeout 150 | tail -1
$B --out $OUT/r129.jsonl --sizes large --batch 112 --variant gelu_tanh --patch bench.variants:gelu_tanh --set norm_impl=pallas --timeout 150 | tail -1
