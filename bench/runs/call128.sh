# Call 128 (session 17): the gated GELU written as gate * sigmoid(2 c (gate + a gate^3))
# (the variant is layers.gelu_product since; the patch is at commit fd38848)
# (`--patch bench.variants:gelu_sigmoid`), which XLA's GEMM rewriter does not fold into the gate
# GEMM's cuBLASLt GELU epilogue with an `aux` output (call 123: `geluaux` GEMMs, 10.4 ms at base
# b256): one [tokens, d_ff] write less per layer. A/B at base b256 and large b112 (95 % pool,
# both norm kernels; bench.xla_flags.DEFAULT now has the dot merger off).
source bench/runs/setup.sh; export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
$B --out $OUT/r128.jsonl --sizes base --batch 256 --variant gelu_sigmoid --patch bench.variants:gelu_sigmoid --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r128.jsonl --sizes base --batch 256 --variant today --set norm_impl=pallas --timeout 120 | tail -1
$B --out $OUT/r128.jsonl --sizes large --batch 112 --variant gelu_sigmoid --patch bench.variants:gelu_sigmoid --set norm_impl=pallas --timeout 150 | tail -1
$B --out $OUT/r128.jsonl --sizes large --batch 112 --variant today --set norm_impl=pallas --timeout 150 | tail -1
