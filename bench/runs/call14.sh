# Call 14: the persistent compilation cache (what `flanjax` commands now turn on): the same large
# b96 run twice in fresh processes; the second loads the compiled step and init from the cache.
source bench/runs/setup.sh
export JAX_COMPILATION_CACHE_DIR=/tmp/flanjax_jax_cache
$B --out $OUT/r14.jsonl --sizes large --batch 96 --steps 3 --variant "cache cold" --timeout 250 | tail -1
$B --out $OUT/r14.jsonl --sizes large --batch 96 --steps 3 --variant "cache warm" --timeout 250 | tail -1
du -sh /tmp/flanjax_jax_cache
