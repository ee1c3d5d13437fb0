"""Probe: the loss's forward statistics over the logits in one read (`losses.row_statistics`)
against XLA's passes on a GPU.

  PYTHONPATH=. python3 bench/probe_loss.py [--steps 20] [--sweep]

For the decoder logits of base b256 and large b112 ([tokens, 32128] float32), one JSON line
each: the time of XLA's forward (the loss's max, sum of exponentials and target logit, and the
accuracy metric's argmax, as `losses.weighted_sums` computes them) and the kernel's, and the
kernel's largest differences from XLA's. `--sweep` times other tilings. No TensorFlow.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.append(REPO)

from bench.timing import ms_per_call  # noqa: E402 (after the path)

SHAPES = {"base_b256": 256 * 128, "large_b112": 112 * 128}
VOCAB = 32128
# (block_rows, block_cols, num_warps, num_stages)
# (call 125 swept 1-16 rows of 256-4096 columns: one row of 2048, 4 warps, 4 stages was best)
SWEEP = [(1, 2048, 4, 4), (1, 4096, 4, 4), (1, 1024, 4, 4), (1, 2048, 8, 4), (1, 2048, 4, 6),
         (1, 4096, 8, 3), (2, 2048, 4, 4), (1, 1024, 2, 6)]


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--sweep", action="store_true")
  args = p.parse_args(argv)
  import jax
  import jax.numpy as jnp

  from flanjax import losses as L

  def timeit(f, *a):
    return ms_per_call(f, *a, steps=args.steps)

  @jax.jit
  def xla_stats(x, t):
    m = jnp.max(x, axis=-1)
    s = jnp.sum(jnp.exp(x - m[:, None]), axis=-1)
    tl = jnp.take_along_axis(x, t[:, None], axis=-1)[:, 0]
    return m, s, tl, jnp.argmax(x, axis=-1).astype(jnp.int32), jnp.sum(x, axis=-1)

  @jax.jit
  def xla_stats_no_sum(x, t):  # the default (no label smoothing) needs no sum of logits
    return xla_stats(x, t)[:4]

  for name, n in SHAPES.items():
    ks = jax.random.split(jax.random.PRNGKey(0), 2)
    x = jax.random.normal(ks[0], (n, VOCAB), jnp.float32) * 4
    t = jax.random.randint(ks[1], (n,), 0, VOCAB, jnp.int32)
    kernel = jax.jit(L.row_statistics)
    want, got = xla_stats(x, t), kernel(x, t)
    row = {"shape": name, "tokens": n, "xla_ms": round(timeit(xla_stats_no_sum, x, t), 4),
           "xla_with_sum_ms": round(timeit(xla_stats, x, t), 4),
           "kernel_ms": round(timeit(kernel, x, t), 4),
           "max_diff": [float(jnp.max(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32))))
                        for a, b in zip(got, want)],
           "read_tb_s": None}
    row["read_tb_s"] = round(n * VOCAB * 4 / row["kernel_ms"] / 1e9, 2)
    print(json.dumps(row), flush=True)
    if args.sweep:
      for br, bc, warps, stages in SWEEP:
        opts = dataclasses.replace(L.STATS_OPTIONS, block_rows=br, block_cols=bc,
                                   num_warps=warps, num_stages=stages)
        fn = jax.jit(lambda x, t, o=opts: L.row_statistics(x, t, o))
        try:
          ms = round(timeit(fn, x, t), 4)
        except Exception as exc:  # noqa: BLE001 (a tiling Triton cannot compile: say so)
          ms = f"failed: {str(exc).splitlines()[0][:120]}"
        print(json.dumps({"shape": name, "tiling": [br, bc, warps, stages], "ms": ms}),
              flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
