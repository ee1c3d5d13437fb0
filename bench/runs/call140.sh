# Call 140 (session 18): call 139's stall was the benchmark's own jax.random.normal init of
# large's params (compiling for > 100 s), not the kernels; now sin-of-iota values. The optimizer
# alone at xl with the Adafactor kernels (checked against optax's first update) and with optax's,
# then xl b48's train step both ways (95 % pool, both norm kernels).
# (The Adafactor kernels, bench/probe_adafactor.py, the adafactor_optax variant and --no-check are at
# commit 10478e3, reverted after row 120; `adafactor_optax` there ran optax's whole update, since
# row 121 it names optax's parameter scale.)
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH timeout -s ABRT 150 python3 -X faulthandler bench/optimizer_step.py --sizes xl --variants adafactor,adafactor_optax 2>&1 | grep -v Warn | tail -6
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r140.jsonl --sizes xl --batch 48 --variant fused_adafactor --set norm_impl=pallas --timeout 180 | tail -1
$B --out $OUT/r140.jsonl --sizes xl --batch 48 --variant optax_adafactor --set norm_impl=pallas --opt-set adafactor_impl=optax --timeout 180 | tail -1
