# Call 75 (session 10): xl fine-tuning b48 (packed, dropout 0.05, 95 % pool) with the MLP's
# hidden dropout shared along the length (NOTES row 76); call 61 measured 552.8 ms, 48.0 %
# with the full mask.
source bench/runs/setup.sh
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 $B --out $OUT/r75.jsonl --sizes xl --batch 48 --packed --set dropout_rate=0.05 --variant ft_shared --timeout 330 | tail -1
