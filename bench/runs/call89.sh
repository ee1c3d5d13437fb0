# Call 89 (session 13): first the attention kernels after session 12's refactor (shared
# _query_rows / _drop / _block_runs; checked in the interpreter only) against the float32
# reference on the GPU, and the model's gradients against the einsum path (packed). Then a
# profile of the large headline row (b112, 95 % pool, both norm kernels) attributed by phase:
# large has not been profiled since row 58 (b64, call 48).
source bench/runs/setup.sh
timeout 200 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --check 2>&1 | grep --line-buffered '^{' | tee $OUT/r89check.jsonl | python3 -c "
import json,sys
rows = [json.loads(l) for l in sys.stdin]
print('checks', len(rows), 'all ok', all(r['ok'] for r in rows), 'worst', max(max(r['rel_err'].values()) for r in rows))"
python3 bench/check_attention.py --impl pallas --packed --input-len 512 --target-len 128 | tail -1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r89.jsonl --sizes large --batch 112 --steps 5 --variant profile_large --set norm_impl=pallas \
   --profile-dir /tmp/prof89 --dump-hlo /tmp/hlo89 --timeout 200 | tail -1
(cd bench && timeout 150 python3 profile_attribution.py /tmp/prof89 /tmp/hlo89/large_profile_large.hlo.txt \
   --top 60 --json $OUT/r89attr.json) > $OUT/r89attr.txt 2>&1; head -80 $OUT/r89attr.txt
