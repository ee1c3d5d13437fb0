# Call 101 (session 14): cuDNN's forward with the Pallas backward for the encoder's unpacked
# rows ("cudnn_pallas", now `auto`'s choice there): cuDNN's forward is the faster one at the
# encoder's shapes (0.38 vs 0.46 ms, large b64, call 97) and the Pallas backward the faster
# one (it reads its dS rows once where cuDNN runs `fmha_dbias` and `matmul_dq`). The
# statistics come from JAX's cuDNN module in float32. First the checks against float32 (with
# right padding) and the model's gradients against einsum, then per attention, then base
# b256 and large b112 A/B in one call, 95 % pool, both norm kernels (`--patch
# bench.variants:cudnn_encoder` = before: cuDNN alone for the encoder).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
timeout 120 python3 bench/probe_flash_attention.py --hybrid
timeout 90 python3 bench/check_attention.py --impl cudnn_pallas --input-len 512 --target-len 128 | tail -2
for s in "base 256 120" "large 112 200"; do
  set -- $s
  $B --out $OUT/r101.jsonl --sizes $1 --batch $2 --variant auto_hybrid --set norm_impl=pallas --timeout $3 | tail -1
  $B --out $OUT/r101.jsonl --sizes $1 --batch $2 --variant cudnn_encoder --set norm_impl=pallas \
     --patch bench.variants:cudnn_encoder --timeout $3 | tail -1
done
