"""Probe: flanjax's fused RMS norm kernels (flanjax/rms_norm.py) against XLA's norm on a GPU.

  PYTHONPATH=. python3 bench/probe_rms_norm.py [--steps 20]

For the encoder activations of base b256, large b64 and xl b48 ([tokens, d_model] bf16), one
JSON line each: forward and forward + backward times (the backward with the residual stream's
cotangent added, as in the model) of both, and the kernel's largest relative errors against a
float32 jnp reference (y, dx, dscale; XLA's in the same units for comparison). No TensorFlow.
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

SHAPES = {"base_b256": (256 * 512, 768), "large_b64": (64 * 512, 1024),
          "xl_b48": (48 * 512, 2048)}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--shapes", default=",".join(SHAPES))
  args = p.parse_args(argv)
  import jax
  import jax.numpy as jnp
  import numpy as np

  from flanjax import rms_norm as R

  def timeit(f, *a):
    return ms_per_call(f, *a, steps=args.steps)

  def xla_norm(x, s):
    return x, R.reference(x, s, 1e-6)

  def fused_norm(x, s):
    return R.rms_norm(x, s, 1e-6, with_residual=True)

  for name in args.shapes.split(","):
    n, d = SHAPES[name]
    ks = jax.random.split(jax.random.PRNGKey(0), 4)
    x = (jax.random.normal(ks[0], (n, d)) * 2).astype(jnp.bfloat16)
    s = 1 + 0.2 * jax.random.normal(ks[1], (d,))
    dy = jax.random.normal(ks[2], (n, d)).astype(jnp.bfloat16)
    dres = jax.random.normal(ks[3], (n, d)).astype(jnp.bfloat16)
    row = {"shape": name, "tokens": n, "d": d}
    outs = {}
    for impl, norm in (("xla", xla_norm), ("pallas", fused_norm)):
      fwd = jax.jit(lambda x, s, norm=norm: norm(x, s)[1])

      def fwd_bwd(x, s, dy, dres, norm=norm):
        (xr, y), vjp = jax.vjp(norm, x, s)
        return (y,) + vjp((dres, dy))
      fb = jax.jit(fwd_bwd)
      row[f"{impl}_fwd_ms"] = round(timeit(fwd, x, s), 4)
      row[f"{impl}_fwd_bwd_ms"] = round(timeit(fb, x, s, dy, dres), 4)
      outs[impl] = [np.asarray(o, np.float32) for o in fb(x, s, dy, dres)]

    def ref_fb(x, s, dy, dres):  # float32 everywhere
      (xr, y), vjp = jax.vjp(lambda x, s: (x, R.reference(x, s, 1e-6)), x, s)
      return (y,) + vjp((dres, dy))
    ref = [np.asarray(o) for o in jax.jit(ref_fb)(x.astype(jnp.float32), s,
                                                 dy.astype(jnp.float32),
                                                 dres.astype(jnp.float32))]
    for impl in outs:
      row[f"{impl}_rel_err"] = [float(np.max(np.abs(o - r)) / np.max(np.abs(r)))
                                for o, r in zip(outs[impl], ref)]
    print(json.dumps(row), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
