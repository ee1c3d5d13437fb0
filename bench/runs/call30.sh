# Call 30: the benchmark figures with today's defaults (optimizer per layer stack, decoder on the
# Pallas kernel, encoder on cuDNN): base b64, large b96, xl b32, unpacked 512/128.
source bench/runs/setup.sh
$B --out $OUT/r30.jsonl --sizes base --batch 64 --variant final4 --timeout 150 | tail -1
$B --out $OUT/r30.jsonl --sizes large --batch 96 --steps 6 --variant final4 --timeout 230 | tail -1
$B --out $OUT/r30.jsonl --sizes xl --batch 32 --steps 6 --variant final4 --timeout 230 | tail -1
