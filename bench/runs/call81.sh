# Call 81 (session 11): base b256 in a 95 % pool (call 80's OOM was the default 75 % pool), the
# fused RMS norm kernels (`--set norm_impl=pallas`; the default when this ran, since made
# opt-in) against XLA's norm, A/B in one call.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95; for v in "norm_pallas" "norm_xla --set norm_impl=xla"; do set -- $v; $B --out $OUT/r81.jsonl --sizes base --batch 256 --variant ${1}_pool95 ${@:2} --timeout 100 | tail -1; done
