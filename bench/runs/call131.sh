# Call 131 (session 17): the final commit (review mends of the loss statistics kernel: targets
# out of range give NaN as take_along_axis, int32 argmax, block checks) on the GPU: the kernel
# against XLA's passes (bench/probe_loss.py), the model's gradients against einsum, and base
# b256 A/B against the tanh-form GELU again (`--patch bench.variants:gelu_tanh`; call 128 was the
# only same-machine A/B at base), 95 % pool, both norm kernels.
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH timeout 100 python3 bench/probe_loss.py 2>&1 | tail -2
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r131.jsonl --sizes base --batch 256 --variant final --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r131.jsonl --sizes base --batch 256 --variant gelu_tanh --patch bench.variants:gelu_tanh --set norm_impl=pallas --timeout 120 | tail -1
