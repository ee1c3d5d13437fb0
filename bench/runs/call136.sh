# Call 136 (session 18): the fused Adafactor reductions (flanjax/adafactor.py, row 120) on the
# GPU: the optimizer alone at xl and large against optax's update (with the first update's max
# relative difference), then xl b48's step with them (default) and with optax's
# (`--opt-set adafactor_impl=optax`), 95 % pool, both norm kernels.
# (The Adafactor kernels, bench/probe_adafactor.py, the adafactor_optax variant and --no-check are at
# commit 10478e3, reverted after row 120; `adafactor_optax` there ran optax's whole update, since
# row 121 it names optax's parameter scale.)
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH python3 bench/optimizer_step.py --sizes xl,large --variants adafactor,adafactor_optax 2>&1 | grep '^{' | tee $OUT/r136opt.jsonl
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r136.jsonl --sizes xl --batch 48 --variant fused_adafactor --set norm_impl=pallas --timeout 200 | tail -1
$B --out $OUT/r136.jsonl --sizes xl --batch 48 --variant optax_adafactor --set norm_impl=pallas --opt-set adafactor_impl=optax --timeout 200 | tail -1
