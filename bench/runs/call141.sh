# Call 141 (session 18): Adafactor's parameter scale with one reduction of each param (row 121,
# `optimizers.scale_by_param_rms`; optax's `safe_root_mean_squares` reduces twice): the
# optimizer alone at xl and large against optax's parameter scale, then xl b48's step both ways
# (`--patch bench.variants:param_rms_optax`), 95 % pool, both norm kernels.
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH timeout 200 python3 bench/optimizer_step.py --sizes xl,large --variants adafactor,adafactor_optax 2>&1 | grep '^{' | tee $OUT/r141opt.jsonl
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r141.jsonl --sizes xl --batch 48 --variant param_rms_once --set norm_impl=pallas --timeout 180 | tail -1
$B --out $OUT/r141.jsonl --sizes xl --batch 48 --variant param_rms_optax --patch bench.variants:param_rms_optax --set norm_impl=pallas --timeout 180 | tail -1
