# Call 108 (session 15): the dK/dV kernel's blocks / warps / stages again under the
# block-first launch order (call 107: the kernel 2.49 -> 2.17 ms at base b256, now at 43 % of
# DRAM bandwidth and 45 % SM throughput with 255 registers a thread, 2 programs per SM):
# the encoder's fwd + bwd with cuDNN's forward at base b256 and large b112 (unpacked) and
# with the kernel's forward at large b64 (packed). `probe_flash_attention.py --sweep-bwd`.
source bench/runs/setup.sh
timeout 400 python3 bench/probe_flash_attention.py --sweep-bwd
