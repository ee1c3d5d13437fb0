# Call 135 (session 18): the optimizer alone at xl and large (`bench/optimizer_step.py`), traced:
# which kernels make the 48 ms of xl's "optimizer/other" phase in call 134 (call 64: 34.1 ms busy
# for the update alone), to size a minimal-pass Adafactor.
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH python3 bench/optimizer_step.py --sizes xl,large --variants adafactor,adafactor_norms,sgd \
  --profile-dir /tmp/opt135 2> $OUT/r135prof.txt | tee $OUT/r135.jsonl
grep -v Warning $OUT/r135prof.txt | cut -c1-260 | head -120
