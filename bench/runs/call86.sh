# Call 86 (session 12): base at the largest batch that fits a 95 % pool (b320: call 61 measured
# 36.9 % with XLA's norm, on a machine that ran b256 at 36.1 %), with the default norm (`auto`)
# and both norm kernels (`pallas`), and b256 with `auto` again for this machine's reference.
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r86.jsonl --sizes base --batch 256 --variant norm_auto_pool95 --timeout 110 | tail -1
$B --out $OUT/r86.jsonl --sizes base --batch 320 --variant norm_auto_pool95 --timeout 130 | tail -1
$B --out $OUT/r86.jsonl --sizes base --batch 320 --variant norm_pallas_pool95 --set norm_impl=pallas --timeout 130 | tail -1
