# Call 80 (session 11): the fused RMS norm kernels (flanjax/rms_norm.py, NOTES row 80). First
# the kernels alone against XLA's norm at the encoder shapes of base b256 / large b64 / xl b48
# (errors against float32 and times; stops here if they do not lower), then the unpacked
# benchmark step with `norm_impl` auto (the kernels; "auto" was the default when this ran, since
# replaced by the opt-in `--set norm_impl=pallas`) against `--set norm_impl=xla`, A/B in one
# call: base b256, large b64.
source bench/runs/setup.sh
python3 bench/probe_rms_norm.py > $OUT/r80probe.jsonl 2> $OUT/r80probe.err || { tail -30 $OUT/r80probe.err; exit 1; }
cat $OUT/r80probe.jsonl
for s in "base 256 100" "large 64 150"; do
  set -- $s
  $B --out $OUT/r80.jsonl --sizes $1 --batch $2 --variant norm_pallas --timeout $3 | tail -1
  $B --out $OUT/r80.jsonl --sizes $1 --batch $2 --variant norm_xla --set norm_impl=xla --timeout $3 | tail -1
done
