# Call 159 (session 21): where xl's optimizer time goes with the gradients the step really has
# (the layers' dW in bf16, call 158's HLO): `optimizer_step.py --bf16-grads`, profiled; and xl at
# b56 (which call 158 showed fits a 95 % pool) against b48 on one machine.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
timeout 200 python3 bench/optimizer_step.py --sizes xl --variants adafactor,sgd --bf16-grads \
  --profile-dir /tmp/optprof 2>&1 | grep -v "^WARNING\|^I0000\|^E0000" | tail -45
for b in 56 48; do
  timeout 170 $B --out $OUT/r159.jsonl --sizes xl --batch $b --set norm_impl=pallas --timeout 165 | tail -1
done
grep -h '"error"' $OUT/r159.jsonl | cut -c1-600
