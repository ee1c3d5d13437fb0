# Call 4: output-layer bf16 backward, bias cost, large unscanned/scanned, compile knobs.
source bench/runs/setup.sh
NT="--xla-flags=--xla_gpu_enable_triton_gemm=false"
$B --out $OUT/r4.jsonl --sizes base --timeout 120 --variant logits_bf16 \
  --patch bench.variants:logits_bf16_grad | tail -1
$B --out $OUT/r4.jsonl --sizes base --timeout 120 --variant no_bias_MEASURE \
  --patch bench.variants:no_bias | tail -1
$B --out $OUT/r4.jsonl --sizes large --batch 64 --timeout 200 --variant best_nt $NT \
  --patch bench.variants:best --profile-dir /tmp/p_large | tail -1
python3 bench/profile_summary.py /tmp/p_large --top 40 > $OUT/prof_large.txt
cp $(find /tmp/p_large -name "*perfetto_trace.json.gz" | head -1) $OUT/large_trace.json.gz
$B --out $OUT/r4.jsonl --sizes large --batch 64 --timeout 120 --variant scan_full_nt $NT \
  --patch bench.variants:best --set scan_layers=true --set remat_policy=full | tail -1
$B --out $OUT/r4.jsonl --sizes large --batch 64 --timeout 120 --variant scan_dots_nt $NT \
  --patch bench.variants:best --set scan_layers=true --set remat_policy=dots | tail -1
head -30 $OUT/prof_large.txt
