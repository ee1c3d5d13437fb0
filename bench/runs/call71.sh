# Call 71 (session 10): (1) where fine-tuning's long compile goes: N chained Pallas attention
# layers (grad) against the einsum path, lower vs compile (bench/compile_time.py); (2) the MLP's
# hidden dropout shared along the length (T5X's MlpBlock; NOTES row 76) against the full
# [tokens, d_ff] mask before it (`--patch bench.variants:mlp_dropout_full`), base fine-tuning
# b64 (packed, dropout 0.05), A/B in one call.
source bench/runs/setup.sh
timeout 200 env PYTHONPATH=.:$PYTHONPATH python3 bench/compile_time.py --impls pallas,xla --layers 1,8,24 2>&1 | grep '^{' | tee $OUT/r71compile.jsonl
timeout 120 env PYTHONPATH=.:$PYTHONPATH python3 bench/compile_time.py --impls pallas --layers 1,24 --packed --dropout 0.1 2>&1 | grep '^{' | tee -a $OUT/r71compile.jsonl
for v in "shared" "full --patch bench.variants:mlp_dropout_full"; do
  set -- $v
  $B --out $OUT/r71.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant ft_mlpdrop_$1 ${@:2} --timeout 150 | tail -1
done
