# Call 32: why large b64 scan + full remat went from 307 ms (row 12) to 401 ms (call 31):
# decoder attention (Pallas vs cuDNN) x optimizer (per layer stack vs one leaf per stack).
source bench/runs/setup.sh
S="--sizes large --batch 64 --set scan_layers=true --set remat_policy=full --timeout 150"
$B --out $OUT/r32.jsonl $S --variant scan_cudnn_dec --set attention_impl=cudnn | tail -1
$B --out $OUT/r32.jsonl $S --variant scan_perleaf --opt-set stacked_layers=false | tail -1
$B --out $OUT/r32.jsonl $S --variant scan_cudnn_perleaf --set attention_impl=cudnn --opt-set stacked_layers=false | tail -1
