# Call 144 (session 19; call 143 ran this before gemm_efficiency.py read operand shapes from the operands' own lines: no GEMM parsed): per-GEMM throughput of the large (b112) and xl (b48) headline rows.
# Call 133's profile put large's GEMMs at ~712 TFLOP/s against the ~790 measured ceiling: 20 ms
# of 387 if all ran at the ceiling. Which shapes fall short, and does each fall short alone too
# (cuBLAS's limit at that shape) or only inside the step? (`gemm_efficiency.py`, `probe_gemm.py`)
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
for s in "large 112" "xl 48"; do set -- $s
  timeout 260 python3 bench/train_throughput.py --log-dir /tmp/logs --out $OUT/r144.jsonl --sizes $1 --batch $2 --steps 5 --variant profile_$1 --set norm_impl=pallas \
     --profile-dir /tmp/prof_$1 --dump-hlo /tmp/hlo_$1 --timeout 250 | tail -1
  (cd bench && timeout 60 python3 gemm_efficiency.py /tmp/prof_$1 /tmp/hlo_$1/$1_profile_$1.hlo.txt \
     --top 45 --json /tmp/gemm_$1.json) > $OUT/gemm_$1.txt 2>&1; head -55 $OUT/gemm_$1.txt
  gzip -c /tmp/hlo_$1/$1_profile_$1.hlo.txt > $OUT/hlo_$1.txt.gz
  (cd bench && timeout 70 python3 probe_gemm.py /tmp/gemm_$1.json --top 16) > $OUT/probe_$1.jsonl 2>&1
  cut -c1-330 $OUT/probe_$1.jsonl
done
