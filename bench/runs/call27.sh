# Call 27: the optimizer alone (profiled: which kernels), and large b64 unpacked with the
# decoder on the Pallas kernel (the new auto) against cuDNN everywhere (the old auto).
source bench/runs/setup.sh
PYTHONPATH=. python3 bench/optimizer_step.py --sizes large --profile-dir /tmp/optprof 2>&1 | tee $OUT/r27opt.txt | grep -v "^a kernel\|GPU threads"
$B --out $OUT/r27.jsonl --sizes large --batch 64 --variant hybrid_auto --timeout 280 | tail -1
$B --out $OUT/r27.jsonl --sizes large --batch 64 --variant cudnn_all --set attention_impl=cudnn --timeout 280 | tail -1
