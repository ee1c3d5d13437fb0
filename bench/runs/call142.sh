# Call 142 (session 18): the large headline row (b112, 95 % pool, both norm kernels) with row
# 121's parameter scale (call 141 measured the A/B at xl and the optimizer alone at large).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r142.jsonl --sizes large --batch 112 --variant param_rms_once --set norm_impl=pallas --timeout 170 | tail -1
