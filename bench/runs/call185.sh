# Call 185 (session 26): the session's final code on the GPU. Decoding changed (all-0 padding
# rows are done from the start; the loops also return their step count; beam settings checked):
# greedy decoding throughput against HF generate as call 39 (full batches, so the padding change
# must not move it: 33.4k tok/s there), and a padded last batch through ModelFns with greedy and
# beam search against the same rows unpadded. Then the model's attention gradients against
# einsum (unchanged code; a check that the GPU path still holds).
source bench/runs/setup.sh
cd .clean
timeout 300 python3 bench/decode_throughput.py --size base --batch 64 --systems flanjax,hf_eager \
  --out $OUT/d185.jsonl --timeout 140 2>&1 | grep --line-buffered -v Warning | tail -3
timeout 200 python3 - <<'PY' 2>&1 | grep -v Warning | tail -6
import time, jax, numpy as np
from flanjax import config as cfg_lib, model, evaluation, decoding
config = cfg_lib.get_config("base", dtype="bfloat16")
params = jax.jit(lambda r: model.init_params(config, r))(jax.random.PRNGKey(0))
rng = np.random.default_rng(0)
tokens = rng.integers(2, 32000, size=(70, 512)).astype(np.int32); tokens[:, -1] = 1
for method in ("greedy", "beam"):
  fns = evaluation.ModelFns(config, params, 64, None, method)
  out = fns.predict(tokens, 64); t0 = time.time(); out = fns.predict(tokens, 64); dt = time.time() - t0
  ref = np.concatenate([fns.predict(tokens[i:i + 1], 64) for i in (0, 65, 69)])
  print(method, "70 rows (64 + 6 padded to 64):", f"{dt:.2f} s", "rows equal alone:",
        bool((out[[0, 65, 69]] == ref).all()))
PY
PYTHONPATH=.:$PYTHONPATH timeout 200 python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
