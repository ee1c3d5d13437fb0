# Call 35 (session 5): the Mosaic GPU (FA3-style) attention with float16 inputs (call 34's bf16
# inputs hit its float16 buffers); the train step's grad/param norms grouped by shape
# (optimizers.tree_norm) vs one reduction per leaf (the patch), large b64; base b128 today.
source bench/runs/setup.sh
timeout 150 env PYTHONPATH=.:$PYTHONPATH python3 bench/probe_flash_attention.py --mgpu --batch 64 2>&1 | grep --line-buffered '^{' | tee $OUT/r35mgpu.jsonl
$B --out $OUT/r35.jsonl --sizes large --batch 64 --variant grouped_norms --timeout 150 | tail -1
$B --out $OUT/r35.jsonl --sizes large --batch 64 --variant per_leaf_norms --patch bench.variants:per_leaf_norms --timeout 150 | tail -1
$B --out $OUT/r35.jsonl --sizes base --batch 128 --variant base_b128 --timeout 100 | tail -1
$B --out $OUT/r35.jsonl --sizes base --batch 64 --variant base_b64 --timeout 100 | tail -1
