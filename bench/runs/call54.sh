# Call 54 (session 6): unpacked rows give the Pallas kernel kv lengths instead of all-ones
# segment ids (NOTES row 63; the lead of row 53). Model-level gradients on the GPU (Pallas
# unpacked and packed, vs the einsum path), the kernel per attention (`--masks`, now with a
# "lengths" case), and large b64 unpacked (decoder on the kernel) A/B/A against the old
# segment ids (`kernel_padding_as_segments`).
source bench/runs/setup.sh
python3 bench/check_attention.py --impl pallas --input-len 512 --target-len 128 | tail -1
python3 bench/check_attention.py --impl pallas --packed --input-len 512 --target-len 128 | tail -1
timeout 170 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --masks --batch 64 2>&1 | grep --line-buffered '^{' | tee $OUT/r54probe.jsonl | tail -2
$B --out $OUT/r54.jsonl --sizes large --batch 64 --variant lengths_a --timeout 130 | tail -1
$B --out $OUT/r54.jsonl --sizes large --batch 64 --variant segments --patch bench.variants:kernel_padding_as_segments --timeout 130 | tail -1
$B --out $OUT/r54.jsonl --sizes large --batch 64 --variant lengths_b --timeout 130 | tail -1
