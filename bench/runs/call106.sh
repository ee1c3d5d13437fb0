# Call 106 (session 15): the dS-rows reader alone at the headline shapes (base b256, large
# b112, xl b48): row groups (base's 12 heads x 8 query blocks are 96 programs of one row group,
# on 132 SMs), the sum on the tensor cores, two rows per iteration, whole-row chunks
# (`probe_flash_attention.py --rows-groups`); then Nsight Compute on the encoder's backward
# kernels at base b256 (dK/dV and the reader): occupancy, throughput, stall reasons.
source bench/runs/setup.sh
timeout 330 python3 bench/probe_flash_attention.py --rows-groups
export XLA_FLAGS=--xla_gpu_enable_command_buffer=
timeout 200 ncu --clock-control none --kernel-name regex:flanjax --section SpeedOfLight \
  --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
  --section WarpStateStats python3 bench/probe_flash_attention.py --one encoder,256,12 \
  > $OUT/ncu106.txt 2>&1
grep -E "flanjax|Duration|Memory Throughput|DRAM Throughput|L2 Cache Throughput|Compute \(SM\)|Registers Per|Shared Memory Config|Dynamic Shared|Achieved Occupancy|Theoretical Occupancy|Block Limit|Stall|Warp Cycles Per Issued|Grid Size|Block Size|One or More|Issued Warp" $OUT/ncu106.txt | cut -c1-150 | head -90
