# Call 158 (session 21): the layers' kernel gradients kept in bf16 up to the optimizer
# (`--patch bench.variants:bf16_grads`), A/B at xl b48 on one machine, with the optimized HLO's
# GEMM output types summarised (do the dW GEMMs write float32 today?).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
gemms() {  # count the cuBLAS GEMMs of an HLO text by output type and shape
  python3 - "$1" <<'PY'
import collections, re, sys
c = collections.Counter()
for line in open(sys.argv[1]):
  if 'custom_call_target="__cublas' in line:
    m = re.search(r"= \(?([a-z0-9]+\[[0-9,]*\])", line)
    c[m.group(1) if m else "?"] += 1
for k, v in sorted(c.items(), key=lambda kv: -kv[1]): print(f"  {v:4d} {k}")
PY
}
timeout 170 $B --out $OUT/r158.jsonl --sizes xl --batch 48 --set norm_impl=pallas --timeout 165 \
  --dump-hlo /tmp/hlo | tail -1
timeout 170 $B --out $OUT/r158.jsonl --sizes xl --batch 48 --variant bf16_grads \
  --set norm_impl=pallas --patch bench.variants:bf16_grads --timeout 165 --dump-hlo /tmp/hlo | tail -1
for f in /tmp/hlo/*.txt; do echo "$f"; gemms "$f" | head -30; done
timeout 170 $B --out $OUT/r158.jsonl --sizes xl --batch 56 --variant bf16_grads \
  --set norm_impl=pallas --patch bench.variants:bf16_grads --timeout 165 | tail -1
grep -h '"error"' $OUT/r158.jsonl | cut -c1-600
