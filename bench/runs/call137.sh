# Call 137 (session 18): call 136 printed nothing in 590 s. The two Adafactor kernels alone
# (bench/probe_adafactor.py: one xl MLP matrix and a vmapped stack of 24, against XLA's sums),
# then the optimizer alone at large with the kernels, each under its own time limit.
# (The Adafactor kernels, bench/probe_adafactor.py, the adafactor_optax variant and --no-check are at
# commit 10478e3, reverted after row 120; `adafactor_optax` there ran optax's whole update, since
# row 121 it names optax's parameter scale.)
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH timeout 150 python3 bench/probe_adafactor.py 2>&1 | grep -v Warn | tail -6
PYTHONPATH=.:$PYTHONPATH timeout 200 python3 bench/optimizer_step.py --sizes large --variants adafactor,adafactor_optax 2>&1 | grep -v Warn | tail -4
