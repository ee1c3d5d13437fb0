# Call 66 (session 8): the `param_norm` metric behind an optimization barrier (row 72: fused with
# the param update, its reduction made XLA write the new params to fresh buffers and copy them
# into the donated ones, ~8 ms/step at xl) vs before (`param_norm_fused`) vs the norm of the
# step's input params (`param_norm_before`); xl b48 (95 % pool) and base b256, same machine.
source bench/runs/setup.sh
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for v in "barrier" "fused --patch bench.variants:param_norm_fused" "before --patch bench.variants:param_norm_before"; do
  set -- $v
  $B --out $OUT/r66.jsonl --sizes xl --batch 48 --variant pn_$1 ${@:2} --timeout 200 | tail -1
done
unset XLA_PYTHON_CLIENT_MEM_FRACTION
$B --out $OUT/r66.jsonl --sizes base --batch 256 --variant pn_barrier --dump-hlo /tmp/hlo66 --timeout 100 | tail -1
$B --out $OUT/r66.jsonl --sizes base --batch 256 --variant pn_fused --patch bench.variants:param_norm_fused --dump-hlo /tmp/hlo66 --timeout 100 | tail -1
for f in /tmp/hlo66/*.txt; do echo "$f copies: $(grep -c ' copy(' $f)"; done
