"""Probe: the gated GELU's fused backward kernel (flanjax/gated_gelu.py) against XLA on a GPU.

  PYTHONPATH=. python3 bench/probe_gated_gelu.py [--steps 20] [--sweep]

For the encoder MLPs of base b256, large b112 and xl b48 (gate, lin [tokens, d_ff] bf16; dout
[tokens, d_model]), one JSON line each: the time of XLA's backward (the GEMM dh = dout wo^T,
then the elementwise pass) and the kernel's, and both one's largest relative errors against a
float32 jnp reference. `--sweep` times other tilings of the kernel too. No TensorFlow.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.append(REPO)

SHAPES = {"base_b256": (256 * 512, 2048, 768), "large_b112": (112 * 512, 2816, 1024),
          "xl_b48": (48 * 512, 5120, 2048)}
# (block_m, block_n, block_k, num_warps, num_stages, prefetch)
SWEEP = [(128, 128, 64, 8, 4, False), (128, 64, 64, 4, 3, False), (128, 128, 64, 8, 4, True),
         (128, 64, 64, 4, 3, True), (64, 128, 64, 4, 3, True), (128, 64, 64, 4, 4, True),
         (64, 64, 64, 4, 3, True), (128, 64, 128, 8, 3, True), (64, 64, 64, 4, 3, False)]


def _triton_gemm(dout, wo, bm=128, bn=128, bk=64):
  """dh = dout wo^T alone, in the kernel's loop (no epilogue): how fast Triton's GEMM is here."""
  import jax
  import jax.numpy as jnp
  from jax.experimental import pallas as pl
  from jax.experimental.pallas import triton as plgpu
  m, e = dout.shape
  f = wo.shape[0]

  def kernel(d_ref, w_ref, o_ref):
    j, i = pl.program_id(0), pl.program_id(1)
    rows, cols = pl.ds(i * bm, bm), pl.ds(j * bn, bn)

    def step(t, acc):
      ks = pl.ds(t * bk, bk)
      return acc + jax.lax.dot_general(d_ref[rows, ks], w_ref[cols, ks], (((1,), (1,)), ((), ())),
                                       preferred_element_type=jnp.float32)
    o_ref[rows, cols] = jax.lax.fori_loop(0, e // bk, step, jnp.zeros((bm, bn), jnp.float32)
                                          ).astype(o_ref.dtype)
  return pl.pallas_call(kernel, grid=(f // bn, m // bm),
                        out_shape=jax.ShapeDtypeStruct((m, f), dout.dtype),
                        compiler_params=plgpu.CompilerParams(num_warps=8, num_stages=4))(dout, wo)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--shapes", default=",".join(SHAPES))
  p.add_argument("--sweep", action="store_true")
  args = p.parse_args(argv)
  import jax
  import jax.numpy as jnp

  from flanjax import gated_gelu as G

  def timeit(f, *a):
    jax.block_until_ready(f(*a))
    t = time.perf_counter()
    for _ in range(args.steps):
      out = f(*a)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / args.steps * 1e3

  @jax.jit
  def xla_backward(dout, wo, gate, lin):  # what autodiff of the model's MLP runs
    _, vjp = jax.vjp(G.gelu_product, gate, lin)
    return vjp(jnp.dot(dout, wo.T))

  def rel_err(got, want):
    return max(float(jnp.max(jnp.abs(g.astype(jnp.float32) - w)) / jnp.max(jnp.abs(w)))
               for g, w in zip(got, want))

  for name in args.shapes.split(","):
    m, f, e = SHAPES[name]
    ks = jax.random.split(jax.random.PRNGKey(0), 4)
    gate = (jax.random.normal(ks[0], (m, f)) * 1.5).astype(jnp.bfloat16)
    lin = jax.random.normal(ks[1], (m, f)).astype(jnp.bfloat16)
    wo = (jax.random.normal(ks[2], (f, e)) * f ** -0.5).astype(jnp.bfloat16)
    dout = jax.random.normal(ks[3], (m, e)).astype(jnp.bfloat16)
    want = jax.jit(lambda *a: G.reference_backward(*(x.astype(jnp.float32) for x in a)))(
        dout, wo, gate, lin)
    kernel = jax.jit(G.backward_kernel)
    row = {"shape": name, "tokens": m, "d_ff": f, "d_model": e,
           "xla_ms": round(timeit(xla_backward, dout, wo, gate, lin), 4),
           "kernel_ms": round(timeit(kernel, dout, wo, gate, lin), 4),
           "xla_rel_err": rel_err(xla_backward(dout, wo, gate, lin), want),
           "kernel_rel_err": rel_err(kernel(dout, wo, gate, lin), want)}
    row["gemm_only_ms"] = round(timeit(jax.jit(lambda d, w: jnp.dot(d, w.T)), dout, wo), 4)
    row["triton_gemm_only_ms"] = round(timeit(jax.jit(_triton_gemm), dout, wo), 4)
    print(json.dumps(row), flush=True)
    if args.sweep:
      for bm, bn, bk, warps, stages, prefetch in SWEEP:
        opts = dataclasses.replace(G.OPTIONS, block_m=bm, block_n=bn, block_k=bk,
                                   num_warps=warps, num_stages=stages, prefetch=prefetch)
        if not G.tiles(m, f, e, opts):
          continue
        fn = jax.jit(lambda *a, o=opts: G.backward_kernel(*a, opts=o))
        try:
          ms = round(timeit(fn, dout, wo, gate, lin), 4)
        except Exception as exc:  # noqa: BLE001 (a tiling Triton cannot compile: say so)
          ms = f"failed: {str(exc).splitlines()[0][:120]}"
        print(json.dumps({"shape": name, "tiling": [bm, bn, bk, warps, stages, prefetch], "ms": ms}),
              flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
