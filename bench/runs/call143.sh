# Call 143 (session 19): per-GEMM throughput of the large (b112) and xl (b48) headline rows.
# Call 133's profile put large's GEMMs at ~712 TFLOP/s against the ~790 measured ceiling: 20 ms
# of 387 if all ran at the ceiling. Which shapes fall short, and does each fall short alone too
# (cuBLAS's limit at that shape) or only inside the step? (`gemm_efficiency.py`, `probe_gemm.py`)
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
for s in "large 112" "xl 48"; do set -- $s
  timeout 260 $B --out $OUT/r143.jsonl --sizes $1 --batch $2 --steps 5 --variant profile_$1 --set norm_impl=pallas \
     --profile-dir /tmp/prof_$1 --dump-hlo /tmp/hlo_$1 --timeout 250 | tail -1
  (cd bench && timeout 60 python3 gemm_efficiency.py /tmp/prof_$1 /tmp/hlo_$1/$1_profile_$1.hlo.txt \
     --top 45 --json $OUT/gemm_$1.json) > $OUT/gemm_$1.txt 2>&1; head -55 $OUT/gemm_$1.txt
  (cd bench && timeout 70 python3 probe_gemm.py $OUT/gemm_$1.json --top 16) > $OUT/probe_$1.jsonl 2>$OUT/probe_$1.err
  cat $OUT/probe_$1.jsonl | cut -c1-330; tail -3 $OUT/probe_$1.err
done
