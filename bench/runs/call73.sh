# Call 73 (session 10): where base fine-tuning's compile goes (68.7 s in call 71 against ~20-24 s
# for the benchmark step): fine-tuning b64 (packed, dropout 0.05) as it is, with the dropout key
# of the `rbg` PRNG (`--patch bench.variants:dropout_rbg`), and with the dropouts outside the
# attention kernel removed (`no_dropout_rng`); then unpacked without dropout, all attention on
# the Pallas kernel (`--set attention_impl=pallas`) and as the benchmark runs (`auto`).
source bench/runs/setup.sh
for v in "ft" "ft_rbg --patch bench.variants:dropout_rbg" "ft_nodroprng --patch bench.variants:no_dropout_rng"; do
  set -- $v
  $B --out $OUT/r73.jsonl --sizes base --batch 64 --packed --set dropout_rate=0.05 --variant $1 ${@:2} --timeout 150 | tail -1
done
$B --out $OUT/r73.jsonl --sizes base --batch 64 --set attention_impl=pallas --variant bench_pallas --timeout 120 | tail -1
$B --out $OUT/r73.jsonl --sizes base --batch 64 --variant bench_auto --timeout 120 | tail -1
