"""Where the compile time of a step with many attention layers goes: trace + lower vs XLA compile.

  PYTHONPATH=. python3 bench/compile_time.py [--impls pallas,xla] [--layers 1,8,24]

Builds grad(sum(attention(...))) over N chained attention layers of T5-large's encoder shapes
(16 heads x 64, 512 tokens, trainable batch-1 bias, batch 8) and times `jax.jit(...).lower()`
(Python tracing and lowering, Pallas' Triton lowering included) and `.compile()` (XLA, Triton
compilation of the Pallas kernels included) separately. If the N identical kernels were
compiled once, the compile time would not grow with N. Prints one JSON line per (impl, N).
No TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.append(REPO)


def time_one(impl: str, num_layers: int, packed: bool, dropout: float) -> dict:
  import jax
  import jax.numpy as jnp

  from flanjax import flash_attention as fa
  from flanjax import layers

  b, t, h, d = 8, 512, 16, 64
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  x = jax.random.normal(keys[0], (b, t, h, d), jnp.bfloat16)
  bias = jax.random.normal(keys[1], (1, h, t, t), jnp.float32)
  seg = jnp.where(jnp.arange(t)[None, :] < t // 2, 1, 2) * jnp.ones((b, 1), jnp.int32)

  def layer(x, bias, i):
    if impl == "pallas":
      kw = dict(q_segment_ids=seg, kv_segment_ids=seg) if packed else {}
      if dropout:
        kw.update(dropout_rate=dropout, dropout_rng=jax.random.fold_in(keys[2], i))
      return fa.flash_attention(x, x * 0.5, x * 0.25, bias, **kw)
    mask = (seg[:, None, :, None] == seg[:, None, None, :]) if packed else None
    return layers.einsum_attention(x, x * 0.5, x * 0.25, bias, mask)

  def loss(x, bias):
    for i in range(num_layers):
      x = x + layer(x, bias, i)
    return jnp.sum(x.astype(jnp.float32))

  fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
  t0 = time.perf_counter()
  lowered = fn.lower(x, bias)
  lower_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  compiled = lowered.compile()
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(compiled(x, bias))
  return {"bench": "compile_time", "impl": impl, "layers": num_layers, "packed": packed,
          "dropout": dropout, "lower_s": round(lower_s, 2), "compile_s": round(compile_s, 2),
          "device_kind": jax.devices()[0].device_kind}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--impls", default="pallas,xla")
  p.add_argument("--layers", default="1,8,24")
  p.add_argument("--packed", action="store_true")
  p.add_argument("--dropout", type=float, default=0.0)
  args = p.parse_args(argv)
  for impl in args.impls.split(","):
    for n in (int(v) for v in args.layers.split(",")):
      print(json.dumps(time_one(impl, n, args.packed, args.dropout)), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
