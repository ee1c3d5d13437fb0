# Call 116 (session 16): the decoder's attentions with cuDNN's forward (cross, self) or cuDNN
# alone (cross: no bias) instead of the Pallas forward, base b256 A/B in one call (95 % pool,
# both norm kernels); gradients against einsum first.
source bench/runs/setup.sh
for v in decoder_cudnn_forward cross_cudnn; do
  PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas --patch bench.variants:$v 2>&1 | tail -4
done
for v in none cross_cudnn_forward cross_cudnn self_cudnn_forward; do
  p=""; [ $v != none ] && p="--patch bench.variants:$v"
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r116.jsonl --sizes base --batch 256 --variant $v --set norm_impl=pallas $p --timeout 120 | tail -1
done
