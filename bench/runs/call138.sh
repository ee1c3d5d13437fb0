# Call 138 (session 18): where the optimizer with the Adafactor kernels stalls (call 137: the
# kernels alone ran in ms; large's whole update printed nothing in 200 s): T5-small then large,
# no comparison with optax first, compile time printed, each under its own limit.
# (The Adafactor kernels, bench/probe_adafactor.py, the adafactor_optax variant and --no-check are at
# commit 10478e3, reverted after row 120; `adafactor_optax` there ran optax's whole update, since
# row 121 it names optax's parameter scale.)
source bench/runs/setup.sh
for s in small large; do
  PYTHONPATH=.:$PYTHONPATH timeout 120 python3 bench/optimizer_step.py --sizes $s --variants adafactor --no-check --steps 5 2>&1 | grep -v Warn | tail -3
done
PYTHONPATH=.:$PYTHONPATH timeout 100 python3 bench/optimizer_step.py --sizes small --variants adafactor --steps 5 2>&1 | grep -v Warn | tail -2
