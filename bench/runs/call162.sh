# Call 162 (session 21): profiles of xl b48 and large b112 on the code of row 135 (the grad-norm
# cond on bf16 kernel gradients): the optimizer phase without the float32 gradient copies.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "xl 48" "large 112"; do set -- $s
  timeout 200 $B --out $OUT/r162.jsonl --sizes $1 --batch $2 --steps 5 --variant profile_$1 \
    --set norm_impl=pallas --profile-dir /tmp/prof_$1 --dump-hlo /tmp/hlo_$1 --timeout 195 | tail -1
  (cd bench && timeout 150 python3 profile_attribution.py /tmp/prof_$1 \
     /tmp/hlo_$1/$1_profile_$1.hlo.txt --top 400) > $OUT/r162attr_$1.txt 2>&1
  sed -n 3,22p $OUT/r162attr_$1.txt
done
