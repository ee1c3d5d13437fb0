# Call 96 (session 13): the Pallas kernel for the encoder too (`--set attention_impl=pallas`;
# `auto` keeps cuDNN for unpacked encoders) at the headline batches, where cuDNN's encoder is
# 82 ms of large b112's 409 ms busy (call 89) and the two last tied at b64 (row 74, call 67).
# A/B in one call, 95 % pool, both norm kernels: base b256 and large b112.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "base 256 120" "large 112 200"; do
  set -- $s
  $B --out $OUT/r96.jsonl --sizes $1 --batch $2 --variant auto --set norm_impl=pallas --timeout $3 | tail -1
  $B --out $OUT/r96.jsonl --sizes $1 --batch $2 --variant pallas_encoder --set norm_impl=pallas \
     --set attention_impl=pallas --timeout $3 | tail -1
done
