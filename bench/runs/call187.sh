# Call 187 (session 28): bench/check_attention.py as rewritten after review 28a (a fixed seed,
# the float32 einsum as the reference, the fused path's worst gradient error within 1.25x bf16
# einsum's, non-finite gradients fail, an all-padding row with loss weight 0 in unpacked
# batches) on the final code, where cuDNN's attention keeps one key for a row of padding alone
# (review 28a measured 8 of 52 gradient leaves non-finite there without it): cuDNN for both
# stacks, cuDNN forward + Pallas backward, the Pallas kernel packed; and cuDNN at input length
# 100 (what `auto` picks cuDNN for).
source bench/runs/setup.sh
cd .clean
for a in "--impl cudnn" "--impl cudnn_pallas" "--impl pallas --packed" "--impl cudnn --input-len 100"; do
  PYTHONPATH=.:$PYTHONPATH timeout 120 python3 bench/check_attention.py $a 2>&1 | grep -v Warning | tail -4
done
