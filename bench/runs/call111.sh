# Call 111 (session 15): Nsight Compute on the decoder's kernels at base b256 (the cross-
# attention's one-kernel backward: 9.3 ms of base's step in call 99; the self-attention's
# dK/dV kernel and reader) and on the encoder's at large b112, after the launch-order fix
# (row 100); the reader with 16 warps (`--rows-groups`).
source bench/runs/setup.sh
export XLA_FLAGS=--xla_gpu_enable_command_buffer=
for t in cross,256,12 decoder_self,256,12 encoder,112,16; do
  timeout 100 ncu --clock-control none --kernel-name regex:flanjax --section SpeedOfLight \
    --section Occupancy --section LaunchStats --section WarpStateStats \
    python3 bench/probe_flash_attention.py --one $t > $OUT/ncu111_${t%%,*}.txt 2>&1
  grep -E "  flanjax_|Duration|DRAM Throughput|Compute \(SM\)|Registers Per|Achieved Occupancy|Dynamic Shared|Warp Cycles Per Issued" $OUT/ncu111_${t%%,*}.txt | cut -c1-110
done
unset XLA_FLAGS
timeout 300 python3 bench/probe_flash_attention.py --rows-groups | python3 -c "
import json,sys
for l in sys.stdin:
  if l.startswith('{'):
    d=json.loads(l); print(d['size'], d['best'], {k: v for k, v in d.items() if k.startswith('q64_k128') or k.startswith('q64_k256')})"
