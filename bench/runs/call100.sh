# Call 100 (session 14): the optimized HLO of the base headline step (b256, both norm kernels),
# to see why the 23 adds of the cross-attention's input gradients (call 99, NOTES row 93) are
# not folded into the projections' GEMMs as the residual adds are (`badd`).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r100.jsonl --sizes base --batch 256 --steps 2 --variant hlo_base --set norm_impl=pallas \
   --dump-hlo /tmp/hlo100 --timeout 200 | tail -1
ls -la /tmp/hlo100
f=/tmp/hlo100/base_hlo_base.hlo.txt
grep -n "wrapped_add.12 = \|wrapped_add_computation.12 \|%wrapped_add.12\b" $f | head -20
gzip -c $f > $OUT/base_hlo.txt.gz; ls -la $OUT
