# Call 102 (session 14): row 95 ("cudnn_pallas" for the encoder) at xl b48, A/B in one call,
# 95 % pool, both norm kernels; and cuDNN's forward with the fused Pallas backward for the
# cross-attention (no bias, 128 queries x 512 keys) per attention, checked against float32.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
timeout 100 python3 bench/probe_flash_attention.py --hybrid | grep cross
$B --out $OUT/r102.jsonl --sizes xl --batch 48 --variant auto_hybrid --set norm_impl=pallas --timeout 230 | tail -1
$B --out $OUT/r102.jsonl --sizes xl --batch 48 --variant cudnn_encoder --set norm_impl=pallas \
   --patch bench.variants:cudnn_encoder --timeout 230 | tail -1
