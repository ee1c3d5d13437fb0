# Call 85 (session 12): xl in a 95 % pool: both norm kernels at b48 (call 83: `auto` 548.5 ms,
# 48.4 %), then gradient accumulation over two microbatches (`--microbatches 2`: the optimizer's
# ~40 ms and the param copies paid once per two microbatches; NOTES row 71 estimated +0.4-0.9
# points at xl b80-96 if it fits beside the 11 GB float32 accumulator) at b80 and b72.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r85.jsonl --sizes xl --batch 48 --variant norm_pallas_pool95 --set norm_impl=pallas --timeout 200 | tail -1
for b in 80 72; do
  $B --out $OUT/r85.jsonl --sizes xl --batch $b --microbatches 2 --variant mb2_pool95 --timeout 200 | tail -1
done
