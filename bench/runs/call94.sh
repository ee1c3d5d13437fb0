# Call 94 (session 13): the README's fine-tuning rows (packed, dropout 0.05) on this session's
# code; they were last measured in session 10 (calls 71-72), before the norm's backward kernel
# became the default (row 81), the one-kernel cross-attention backward (row 85) and the cross
# entropy's one-pass backward (row 88). Default pool, default norm.
source bench/runs/setup.sh
for s in "base 64 150" "large 64 280"; do
  set -- $s
  $B --out $OUT/r94.jsonl --sizes $1 --batch $2 --packed --set dropout_rate=0.05 --variant ft --timeout $3 | tail -1
done
