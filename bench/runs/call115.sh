# Call 115 (session 15): the final commit on the GPU after the review mends (warp / stage
# counts checked by name, docstrings, bench variants): the kernel checks against float32, the
# model's gradients against einsum, and a base b256 step with every default.
source bench/runs/setup.sh
timeout 150 python3 bench/probe_flash_attention.py --check | python3 -c "
import json,sys
rows=[json.loads(l) for l in sys.stdin if l.startswith('{')]
print('checks', len(rows), 'all ok', all(r['ok'] for r in rows), 'worst', max(max(r['rel_err'].values()) for r in rows))"
timeout 90 python3 bench/check_attention.py --impl cudnn_pallas --input-len 512 --target-len 128 | tail -1
$B --out $OUT/r115.jsonl --sizes base --batch 256 --variant final_default --timeout 120 | tail -1
