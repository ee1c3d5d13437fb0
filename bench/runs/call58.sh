# Call 58 (session 7): dQ as one batched GEMM over the dS rows the dK/dV kernel already stores
# for the bias gradient (`FlashOptions.dq_from_rows`, NOTES row 65) vs the dQ kernel
# (`--patch bench.variants:dq_kernel`). Model-level gradients on the GPU (Pallas, unpacked and
# packed, vs einsum), the kernel per attention with a bias (`--dq`), and large b64 with the
# encoder on the kernel (`attention_impl=pallas`) and with `auto` (cuDNN encoder; the decoder's
# self-attention is the only kernel call with a bias), each A/B in one call.
source bench/runs/setup.sh
python3 bench/check_attention.py --impl pallas --input-len 512 --target-len 128 | tail -1
python3 bench/check_attention.py --impl pallas --packed --input-len 512 --target-len 128 | tail -1
timeout 150 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --dq --batch 64 2>&1 | grep --line-buffered '^{' | tee $OUT/r58probe.jsonl
$B --out $OUT/r58.jsonl --sizes large --batch 64 --variant pallas_dqrows --set attention_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r58.jsonl --sizes large --batch 64 --variant pallas_dqkernel --set attention_impl=pallas --patch bench.variants:dq_kernel --timeout 120 | tail -1
$B --out $OUT/r58.jsonl --sizes large --batch 64 --variant auto_dqrows --timeout 120 | tail -1
$B --out $OUT/r58.jsonl --sizes large --batch 64 --variant auto_dqkernel --patch bench.variants:dq_kernel --timeout 120 | tail -1
