# Call 122 (session 16): the final commit (review mends: the joint gradient buffers off in
# FlashOptions by default and turned on by the model's attention, a dtype check, a no-copy HLO
# test) on the GPU: kernel checks against float32 (now with separate gradient buffers), the
# model's gradients against einsum (joint buffers), base b256 headline and default rows.
source bench/runs/setup.sh
PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --check > $OUT/check122.jsonl 2>&1
echo "kernel checks ok: $(grep -c '"ok": true' $OUT/check122.jsonl), failed: $(grep -c '"ok": false' $OUT/check122.jsonl)"
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl pallas --packed 2>&1 | tail -1
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r122.jsonl --sizes base --batch 256 --variant final --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r122.jsonl --sizes base --batch 256 --variant final_default --timeout 120 | tail -1
