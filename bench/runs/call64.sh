# Call 64 (session 8): the optimizer alone at xl and large, in a 95 % pool (call 63's xl run
# printed nothing within its 150 s), with the top kernels of xl's update (profile to stderr):
# what the per-stack Adafactor costs against the 3-pass floor (sgd), and where it goes.
source bench/runs/setup.sh
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
set -o pipefail
timeout 240 python3 bench/optimizer_step.py --sizes xl --variants adafactor,sgd --steps 10 \
   --profile-dir /tmp/prof64 2>&1 | tee $OUT/r64xl.txt | grep -v "^WARNING\|^I0000\|^W0000" | head -60
timeout 200 python3 bench/optimizer_step.py --sizes large --variants adafactor,adafactor_per_leaf,sgd --steps 10 \
   2>&1 | tee $OUT/r64large.txt | grep '^{'
