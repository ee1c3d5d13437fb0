# Call 3: base b64 variants of the prototype patches (bench/variants.py), profile + HLO.
source bench/runs/setup.sh
R="--out $OUT/r3.jsonl --sizes base --timeout 150"
$B $R --variant baseline_hlo --dump-hlo /tmp/hlo | tail -1
$B $R --variant relpos_gather --patch bench.variants:relpos_gather | tail -1
$B $R --variant fused_proj --patch bench.variants:fused_proj | tail -1
$B $R --variant bf16_params --patch bench.variants:bf16_params | tail -1
$B $R --variant no_bias_grad --patch bench.variants:no_bias_grad | tail -1
$B $R --variant all3 --patch bench.variants:all_fast --patch bench.variants:bf16_params \
  --profile-dir /tmp/p_all | tail -1
python3 bench/profile_summary.py /tmp/p_all --top 60 > $OUT/prof_all3.txt
gzip -c /tmp/hlo/*.txt > $OUT/base_baseline.hlo.txt.gz
python3 bench/check_attention.py --patch bench.variants:all_fast | tail -4
