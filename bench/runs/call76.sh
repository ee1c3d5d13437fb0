# Call 76 (session 11): dropout masks hashed from one seed per layer (flanjax.dropout, NOTES
# row 79) against the code before them (9e61c8f: a threefry fold-in and a threefry draw per
# dropout site), carried as outputs/old (`git archive 9e61c8f | tar -x -C outputs/old`):
# fine-tuning b64 (packed, dropout 0.05), base and large, A/B in one call.
# NOTE: as written, the "ft_threefry" runs imported today's flanjax too: setup.sh's
# PYTHONPATH=/tmp/site: ends in an empty entry (the working directory, the repo root), which
# comes before the old tree that outputs/old/bench/train_throughput.py appends. Both variants
# are therefore today's code (an A/A); call77.sh runs the old tree from inside outputs/old.
source bench/runs/setup.sh
OLD="python3 outputs/old/bench/train_throughput.py --steps 10 --log-dir $OUT/logs_old"
for s in "base 150" "large 280"; do
  set -- $s
  $B --out $OUT/r76.jsonl --sizes $1 --batch 64 --packed --set dropout_rate=0.05 --variant ft_hash --timeout $2 | tail -1
  $OLD --out $OUT/r76.jsonl --sizes $1 --batch 64 --packed --set dropout_rate=0.05 --variant ft_threefry --timeout $2 | tail -1
done
