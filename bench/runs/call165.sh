# Call 165 (session 21): Adafactor per group of layers (`per_layer(group_size=G)`, the
# `bench.variants:layer_groups_G` patches): the update alone at xl with bf16 layer gradients for
# G = 24 (default), 12, 8, 4; then xl b48 A/B against the fastest group alone.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for g in 24 12 8 4; do
  p=""; [ $g != 24 ] && p="--patch bench.variants:layer_groups_$g"
  ms=$(timeout 100 python3 bench/optimizer_step.py --sizes xl --variants adafactor --bf16-grads $p \
    2>&1 | grep '^{' | python3 -c "import json,sys; print(round(json.loads(sys.stdin.read())['ms'], 2))")
  echo "group $g: $ms ms"; [ -n "$ms" ] && echo "group $g: $ms ms" >> /tmp/alone.txt
done
echo "fastest alone: $(sort -t: -k2 -n /tmp/alone.txt | head -1)"
best=$(sort -t: -k2 -n /tmp/alone.txt | head -1 | awk '{print $2}' | tr -d :)
[ "$best" = 24 ] && best=8
for s in "xl 48"; do set -- $s
  timeout 170 $B --out $OUT/r165.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --timeout 165 | tail -1
  timeout 170 $B --out $OUT/r165.jsonl --sizes $1 --batch $2 --variant groups_$best \
    --set norm_impl=pallas --patch bench.variants:layer_groups_$best --timeout 165 | tail -1
done
grep -h '"error"' $OUT/r165.jsonl | cut -c1-600
