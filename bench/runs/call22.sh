# Call 22: model-level gradient parity on the GPU: cuDNN (unpacked) and the Pallas kernel
# (packed rows, and unpacked with attention_impl=pallas) against the einsum path, base, 2 layers.
source bench/runs/setup.sh
python3 bench/check_attention.py | tail -1
python3 bench/check_attention.py --impl pallas --packed --input-len 512 --target-len 128 | tail -3
python3 bench/check_attention.py --impl pallas --input-len 512 --target-len 128 | tail -1
