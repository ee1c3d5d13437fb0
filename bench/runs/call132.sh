# Call 132 (session 18): JAX's Mosaic GPU attention (FA3-style, no bias) against cuDNN and
# flanjax's Pallas kernel, with and without T5's relative bias, at the encoder's shapes of the
# large headline row (b112, 16 heads x 64, 512 tokens; `probe_flash_attention.py --mgpu`), and a
# copy of JAX 0.11's attention_mgpu.py and Mosaic GPU sources: does a Hopper kernel pay?
# (Run as one command line; this file restates it.)
source bench/runs/setup.sh; python3 -c "import jax,flax; print(jax.__version__, flax.__version__)"
D=$(python3 -c "import jax,os;print(os.path.dirname(jax.__file__))")
cp $D/experimental/pallas/ops/gpu/attention_mgpu.py $D/experimental/pallas/ops/gpu/hopper_matmul_mgpu.py $OUT/
tar czf $OUT/mgpu_src.tgz -C $D/_src/pallas mosaic_gpu
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
PYTHONPATH=.:$PYTHONPATH timeout 300 python3 bench/probe_flash_attention.py --mgpu --batch 112 2>&1 | grep -v Warning | tail -14
