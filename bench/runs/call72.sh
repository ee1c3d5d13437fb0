# Call 72 (session 10): T5-large fine-tuning b64 (packed, dropout 0.05), the MLP's hidden dropout
# shared along the length (default since NOTES row 76) against the full mask before it
# (`--patch bench.variants:mlp_dropout_full`), A/B in one call.
source bench/runs/setup.sh
for v in "shared" "full --patch bench.variants:mlp_dropout_full"; do
  set -- $v
  $B --out $OUT/r72.jsonl --sizes large --batch 64 --packed --set dropout_rate=0.05 --variant ft_mlpdrop_$1 ${@:2} --timeout 280 | tail -1
done
