# Call 105 (session 14, nvidia-h200-x2): "cudnn_pallas" (cuDNN's forward with the Pallas
# backward, run per shard through the kernel's shard_map) under a data-parallel (2, 1) and a
# heads-sharded (1, 2) mesh: the model's gradients against einsum, and against the same path
# unsharded; the Pallas path alone for comparison.
source bench/runs/setup.sh
for impl in cudnn_pallas pallas; do
  for mesh in 2,1 1,2; do
    timeout 140 python3 bench/check_attention.py --impl $impl --mesh $mesh --input-len 512 \
      --target-len 128 | grep -E "^mesh|parity"
  done
done
