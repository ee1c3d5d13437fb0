"""Probe: flanjax.adafactor's two reduction kernels alone on a GPU, against XLA's reductions.

  PYTHONPATH=. python3 bench/probe_adafactor.py [--layers 24] [--shape 2048,5120]

One JSON line per case: ms per call of `square_sums` (row and column sums of g^2, sum of p^2)
and `scaled_square_sum` on one matrix and on a vmapped stack of `--layers` (as
`optimizers.per_layer` runs them), the same sums by XLA (jnp), and the largest relative
difference. The bandwidth column counts one read of each input.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.append(REPO)

from bench.timing import ms_per_call  # noqa: E402 (after the path)


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--layers", type=int, default=24)
  p.add_argument("--shape", default="2048,5120")
  p.add_argument("--steps", type=int, default=10)
  args = p.parse_args(argv)
  import jax
  import jax.numpy as jnp

  from flanjax import adafactor as fa
  a, b = (int(x) for x in args.shape.split(","))

  def xla_sums(g, p):
    sq = g * g
    return jnp.sum(sq, axis=1), jnp.sum(sq, axis=0), jnp.sum(p * p)

  def xla_scaled(g, f0, f1):
    return jnp.sum((g * f0[:, None] * f1[None, :]) ** 2)

  for layers in (None, args.layers):
    shape = (a, b) if layers is None else (layers, a, b)
    g = jax.random.normal(jax.random.PRNGKey(0), shape)
    pm = jax.random.normal(jax.random.PRNGKey(1), shape)
    f0 = jnp.ones(shape[:-1]) * 1.5
    f1 = jnp.ones(shape[:-2] + (b,)) * 0.5
    cases = {"sums": (fa.square_sums, xla_sums, (g, pm), 2),
             "scaled": (fa.scaled_square_sum, xla_scaled, (g, f0, f1), 1)}
    for name, (kernel, ref, xs, reads) in cases.items():
      if layers is not None:
        kernel, ref = jax.vmap(kernel), jax.vmap(ref)
      row = {"probe": "adafactor", "case": name, "shape": shape}
      try:
        kfn, rfn = jax.jit(kernel), jax.jit(ref)
        got, want = kfn(*xs), rfn(*xs)
        row["rel_err"] = max(float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
                             for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want)))
        row["kernel_ms"] = round(ms_per_call(kfn, *xs, steps=args.steps), 3)
        row["xla_ms"] = round(ms_per_call(rfn, *xs, steps=args.steps), 3)
        row["kernel_tbs"] = round(reads * g.size * 4 / row["kernel_ms"] / 1e9, 2)
      except Exception as e:  # noqa: BLE001 - report and go on
        row["error"] = f"{type(e).__name__}: {str(e)[:400]}"
      print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
