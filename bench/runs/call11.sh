# Call 11: cuDNN packed layout again, with uncovered (padding) rows zeroed both ways and the
# segment bound M close to the real count; the large packed einsum step with a longer limit.
source bench/runs/setup.sh
python3 bench/probe_packed_attention.py --time 2>&1 | grep -E '^\{|^segments|Error' | head -30
$B --out $OUT/r11.jsonl --sizes large --batch 64 --steps 5 --packed --variant packed --timeout 330 | tail -1
