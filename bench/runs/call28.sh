# Call 28: the optimizer per layer stack (optimizers.per_layer) against one leaf at a time, alone
# and in large b64's step; the step also has the decoder on the Pallas kernel (new auto).
source bench/runs/setup.sh
PYTHONPATH=. python3 bench/optimizer_step.py --sizes large --variants adafactor,adafactor_per_leaf,sgd | tee $OUT/r28opt.jsonl | cut -c1-160
$B --out $OUT/r28.jsonl --sizes large --batch 64 --variant new_default --timeout 280 | tail -1
$B --out $OUT/r28.jsonl --sizes large --batch 64 --variant old_cudnn_perleaf --set attention_impl=cudnn --opt-set stacked_layers=false --timeout 280 | tail -1
