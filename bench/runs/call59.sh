# Call 59 (session 7): block sizes / warps / stages of the encoder kernel now that its dK/dV
# kernel is the whole backward (row 65: dQ from the dS rows), unpacked (kv lengths) and packed;
# and the fine-tuning configuration (packed rows, dropout 0.05: the kernel on every attention),
# large b64, dQ from the rows (today) vs the dQ kernel, A/B in one call.
source bench/runs/setup.sh
timeout 150 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --sweep --batch 64 2>&1 | grep --line-buffered '^{' | tee $OUT/r59sweep.jsonl
$B --out $OUT/r59.jsonl --sizes large --batch 64 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_dqrows --timeout 210 | tail -1
$B --out $OUT/r59.jsonl --sizes large --batch 64 --steps 5 --packed --set dropout_rate=0.05 --variant finetune_dqkernel --patch bench.variants:dq_kernel --timeout 210 | tail -1
