# Call 107 (session 15): the Pallas attention kernels launched block index first
# (`FlashOptions.blocks_first`, new default): call 106's ncu put base b256's dK/dV kernel at
# 2.49 ms moving 5.7 GB through DRAM (2.3 TB/s) where ~2.8 GB are needed: with the row index
# in grid x, the 8 programs of one (row, head) start 3072 programs apart and each re-reads q
# and dO from HBM. Also the reader's 128-key chunks (call 106: -2..-5 % alone). First the
# kernel checks against float32 and the model's gradients against einsum, then ncu on the
# dK/dV kernel, per attention, then base b256 and large b112 A/B in one call, 95 % pool, both
# norm kernels (`--patch bench.variants:rows_first` = the launch order before).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
timeout 150 python3 bench/probe_flash_attention.py --check | python3 -c "
import json,sys
rows=[json.loads(l) for l in sys.stdin if l.startswith('{')]
print('checks', len(rows), 'all ok', all(r['ok'] for r in rows), 'worst', max(max(r['rel_err'].values()) for r in rows))"
timeout 90 python3 bench/check_attention.py --impl cudnn_pallas --input-len 512 --target-len 128 | tail -1
XLA_FLAGS=--xla_gpu_enable_command_buffer= timeout 100 ncu --clock-control none \
  --kernel-name regex:flanjax --section SpeedOfLight python3 bench/probe_flash_attention.py \
  --one encoder,256,12 2>&1 | grep -E "flanjax_|Duration|DRAM Throughput|Compute \(SM\)" | cut -c1-100
timeout 120 python3 bench/probe_flash_attention.py --hybrid | grep -v '"check"'
for s in "base 256 120" "large 112 200"; do
  set -- $s
  $B --out $OUT/r107.jsonl --sizes $1 --batch $2 --variant blocks_first --set norm_impl=pallas --timeout $3 | tail -1
  $B --out $OUT/r107.jsonl --sizes $1 --batch $2 --variant rows_first --set norm_impl=pallas \
     --patch bench.variants:rows_first --timeout $3 | tail -1
done
