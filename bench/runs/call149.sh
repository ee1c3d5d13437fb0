# Call 149 (session 19; runs the code of 54cd6fd, reverted in 886e7e9: row 126): bf16 copies of the kernels carried in the train state
# (`train(compute_copies=True)`, the new default): the update writes them, the next step's GEMMs
# read them, instead of 432 convert kernels (xl) reading every float32 kernel at each step's
# start. A/B at xl b48 and large b112 (`--no-compute-copies` = before). Prediction: the converts'
# float32 reads go (xl 11.4 GB, ~3.4 ms; large 3.1 GB, ~1 ms); loss_first / loss_last identical.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "xl 48" "large 112"; do set -- $s
  for v in copies no_copies; do
    x=""; [ $v = no_copies ] && x="--no-compute-copies"
    timeout 140 $B --out $OUT/r149.jsonl --sizes $1 --batch $2 --variant $v --set norm_impl=pallas $x --timeout 135 | tail -1
  done
done
python3 -c "
import json
for l in open('$OUT/r149.jsonl'):
  r=json.loads(l); print(r['size'], r['variant'], r.get('step_s'), r.get('mfu'), r.get('peak_mem_gb'), r.get('loss_first'), r.get('loss_last'), r.get('error','')[:300])
"
