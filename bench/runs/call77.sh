# Call 77 (session 11): the A/B call 76 meant to run. The code before the hashed dropout masks
# (9e61c8f, carried as outputs/old) runs from inside outputs/old, so that the working
# directory on sys.path (setup.sh's PYTHONPATH ends in an empty entry) is the old tree
# (checked first: the old tree has no flanjax/dropout.py). Base: old, today's; large: old
# (call 76 measured today's code on both sizes).
source bench/runs/setup.sh
CHECK="import flanjax, os; print(flanjax.__file__, 'has dropout.py:', os.path.exists(os.path.join(os.path.dirname(flanjax.__file__), 'dropout.py')))"
python3 -c "$CHECK"; (cd outputs/old && python3 -c "$CHECK")
OLD="python3 bench/train_throughput.py --steps 10 --log-dir $OUT/logs_old"
FT="--batch 64 --packed --set dropout_rate=0.05"
(cd outputs/old && $OLD --out $OUT/r77.jsonl --sizes base $FT --variant ft_threefry --timeout 150 | tail -1)
$B --out $OUT/r77.jsonl --sizes base $FT --variant ft_hash --timeout 150 | tail -1
(cd outputs/old && $OLD --out $OUT/r77.jsonl --sizes large $FT --variant ft_threefry --timeout 280 | tail -1)
