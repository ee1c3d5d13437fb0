# Call 139 (session 18): call 138 ran T5-small's update with the Adafactor kernels (3.8 ms, 3.8 s
# compile, 4.5e-7 from optax) but large's printed nothing in 120 s, before its compile ended.
# Base, then large with Python's stack dumped when the limit strikes (SIGABRT + faulthandler).
# (The Adafactor kernels, bench/probe_adafactor.py, the adafactor_optax variant and --no-check are at
# commit 10478e3, reverted after row 120; `adafactor_optax` there ran optax's whole update, since
# row 121 it names optax's parameter scale.)
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH timeout 100 python3 bench/optimizer_step.py --sizes base --variants adafactor --no-check --steps 5 2>&1 | grep -v Warn | tail -2
PYTHONPATH=.:$PYTHONPATH timeout -s ABRT 110 python3 -X faulthandler bench/optimizer_step.py --sizes large --variants adafactor --no-check --steps 5 2>&1 | grep -v Warn | tail -40
