# Call 29: large b64's step with the optimizer per layer stack and the decoder on the Pallas
# kernel (the new defaults) against one leaf at a time and cuDNN everywhere (before).
# (Call 28 measured the optimizer alone: bench/optimizer_step.py --sizes large --variants
# adafactor,adafactor_per_leaf; its sgd variant and the two steps below did not finish in the
# call's 600 s.)
source bench/runs/setup.sh
$B --out $OUT/r29.jsonl --sizes large --batch 64 --variant new_default --timeout 270
$B --out $OUT/r29.jsonl --sizes large --batch 64 --variant old_cudnn_perleaf --set attention_impl=cudnn --opt-set stacked_layers=false --timeout 270
