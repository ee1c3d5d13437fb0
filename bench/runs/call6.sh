# Call 6: bigger batches (large, xl), greedy decoding vs HF, the torch.compile peer.
source bench/runs/setup.sh
NT="--xla-flags=--xla_gpu_enable_triton_gemm=false"
$B --out $OUT/r6.jsonl --sizes xl --batch 32 --steps 6 --timeout 200 --variant best_nt $NT \
  --patch bench.variants:best | tail -1
$B --out $OUT/r6.jsonl --sizes large --batch 96 --steps 8 --timeout 160 --variant best_nt $NT \
  --patch bench.variants:best | tail -1
python3 bench/decode_throughput.py --size base --batch 64 --out $OUT/d6.jsonl \
  --log-dir $OUT/logs --timeout 200 | tail -4
$B --out $OUT/r6.jsonl --sizes base --systems hf_compile --timeout 200 --variant peer | tail -1
