"""T5's RMS layer norm as fused Pallas (Triton) kernels for GPUs.

XLA splits the norm into a row reduction and an elementwise pass and spends two more
reductions on the backward (the per-row Σ g·x̂ and the scale's column sums); on T5-base b256 on
an H100 the norms took ~28 ms of a 303 ms step (bench/NOTES.md, row 80). Here:
- forward: one kernel reads x once and writes y = x · rsqrt(mean(x²) + eps) · scale and the
  per-row rsqrt;
- backward: one kernel reads x, dy and the cotangent of the residual stream once and writes dx
  (the norm's input gradient plus that residual cotangent, which XLA would add in a pass of
  its own) and per-program partial sums of the scale's gradient.

`rms_norm(x, scale, eps, with_residual=True)` returns `(x, y)`: the first output is x itself,
to be used as the residual stream, so that its cotangent reaches the norm's backward kernel.
Statistics are float32; y and dx are in x's dtype. `reference` is the same maths in jnp.

`fused_forward=False` keeps XLA's forward (the same maths in jnp, with the per-row rsqrt as the
backward's residual) and only the backward kernel: XLA can recompute its own normalised
activations for the backward pass when memory is short, and cannot recompute a Pallas call's.

Measured on an H100 (calls 80-82, bench/NOTES.md rows 80-81): fwd + bwd at base b256's encoder
shape 0.46 ms against XLA's 0.56. Both kernels: the step 1.3 % (large b64) to 2.0 % (base b256)
faster, but base b256 no longer fits JAX's default 75 % pool. XLA's forward with the backward
kernel (`T5Config.norm_impl="auto"` on GPUs, the default): base b256 1.5 % faster in the
default pool.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

Array = Any

_ELEMENTS_PER_PROGRAM = 4096  # rows x padded columns each program holds (registers)
_BWD_PROGRAMS = 1024  # backward programs (grid-stride over row blocks): partial scale sums


def reference(x: Array, scale: Array, eps: float, dtype=None) -> Array:
  """The layer norm in jnp (XLA's, `norm_impl="xla"`): float32 statistics, output in `dtype`
  (default x's)."""
  return _xla_forward(x, scale, eps, dtype)[0]


def _xla_forward(x, scale, eps, dtype=None):
  """`_forward` in jnp, any rank: y [..., d] in `dtype` (default x's) and the per-row rsqrt
  [...] float32 (the backward kernel's residual)."""
  x32 = x.astype(jnp.float32)
  r = jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1) + eps)  # [...]
  return (x32 * r[..., None] * scale.astype(jnp.float32)).astype(dtype or x.dtype), r


def _tiling(d: int) -> tuple[int, int]:
  cols = pl.next_power_of_2(d)
  return max(1, _ELEMENTS_PER_PROGRAM // cols), cols


def _load(ref, rows, cols, n_rows, n_cols):
  mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
  return plgpu.load(ref.at[rows[:, None], cols[None, :]], mask=mask,
                    other=0.0).astype(jnp.float32), mask


def _fwd_kernel(x_ref, s_ref, y_ref, r_ref, *, eps, block_rows, block_cols):
  n_rows, n_cols = x_ref.shape
  rows = pl.program_id(0) * block_rows + jnp.arange(block_rows)
  cols = jnp.arange(block_cols)
  x, mask = _load(x_ref, rows, cols, n_rows, n_cols)  # [rows, cols] f32, zero padded
  r = 1.0 / jnp.sqrt(jnp.sum(x * x, axis=1) / n_cols + eps)  # [rows]
  s = plgpu.load(s_ref.at[cols], mask=cols < n_cols, other=0.0).astype(jnp.float32)
  plgpu.store(y_ref.at[rows[:, None], cols[None, :]],
              (x * r[:, None] * s[None, :]).astype(y_ref.dtype), mask=mask)
  plgpu.store(r_ref.at[rows], r, mask=rows < n_rows)


def _bwd_kernel(x_ref, s_ref, r_ref, dy_ref, dres_ref, dx_ref, ds_ref, *, block_rows,
                block_cols, num_programs):
  n_rows, n_cols = x_ref.shape
  pid = pl.program_id(0)
  cols = jnp.arange(block_cols)
  s = plgpu.load(s_ref.at[cols], mask=cols < n_cols, other=0.0).astype(jnp.float32)
  num_blocks = pl.cdiv(n_rows, block_rows)

  def body(i, ds_acc):
    rows = (pid + i * num_programs) * block_rows + jnp.arange(block_rows)
    x, mask = _load(x_ref, rows, cols, n_rows, n_cols)
    dy, _ = _load(dy_ref, rows, cols, n_rows, n_cols)
    r = plgpu.load(r_ref.at[rows], mask=rows < n_rows, other=0.0)  # [rows] f32
    xh = x * r[:, None]  # x̂
    g = dy * s[None, :]
    c = jnp.sum(xh * g, axis=1) / n_cols  # [rows]
    dx = (g - xh * c[:, None]) * r[:, None]
    if dres_ref is not None:
      dx = dx + _load(dres_ref, rows, cols, n_rows, n_cols)[0]
    plgpu.store(dx_ref.at[rows[:, None], cols[None, :]], dx.astype(dx_ref.dtype), mask=mask)
    return ds_acc + jnp.sum(dy * xh, axis=0)

  # blocks pid, pid + P, pid + 2P, ... (the last programs may get one block fewer)
  count = (num_blocks - pid + num_programs - 1) // num_programs
  ds = jax.lax.fori_loop(0, count, body, jnp.zeros((block_cols,), jnp.float32))
  plgpu.store(ds_ref.at[pid, cols], ds)


def _interpret() -> bool:
  return jax.default_backend() != "gpu"


def _forward(x2, scale, eps):
  n, d = x2.shape
  block_rows, block_cols = _tiling(d)
  return pl.pallas_call(
      functools.partial(_fwd_kernel, eps=eps, block_rows=block_rows, block_cols=block_cols),
      grid=(pl.cdiv(n, block_rows),),
      out_shape=(jax.ShapeDtypeStruct((n, d), x2.dtype),
                 jax.ShapeDtypeStruct((n,), jnp.float32)),
      compiler_params=plgpu.CompilerParams(num_warps=4, num_stages=1),
      interpret=_interpret(), name="flanjax_rms_norm_fwd")(x2, scale)


def _backward(x2, scale, r, dy2, dres2):
  n, d = x2.shape
  block_rows, block_cols = _tiling(d)
  programs = min(_BWD_PROGRAMS, pl.cdiv(n, block_rows))
  kernel = functools.partial(_bwd_kernel, block_rows=block_rows, block_cols=block_cols,
                             num_programs=programs)
  if dres2 is None:
    kernel = functools.partial(_no_residual, kernel)
    args = (x2, scale, r, dy2)
  else:
    args = (x2, scale, r, dy2, dres2)
  dx, ds = pl.pallas_call(
      kernel, grid=(programs,),
      out_shape=(jax.ShapeDtypeStruct((n, d), x2.dtype),
                 jax.ShapeDtypeStruct((programs, block_cols), jnp.float32)),
      compiler_params=plgpu.CompilerParams(num_warps=4, num_stages=2),
      interpret=_interpret(), name="flanjax_rms_norm_bwd")(*args)
  return dx, jnp.sum(ds[:, :d], axis=0)


def _no_residual(kernel, x_ref, s_ref, r_ref, dy_ref, dx_ref, ds_ref):
  kernel(x_ref, s_ref, r_ref, dy_ref, None, dx_ref, ds_ref)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _norm(x2, scale, eps, with_residual, fused_forward):
  return _norm_fwd(x2, scale, eps, with_residual, fused_forward)[0]


def _norm_fwd(x2, scale, eps, with_residual, fused_forward):
  forward = _forward if fused_forward else _xla_forward
  y, r = forward(x2, scale.astype(jnp.float32), eps)
  return ((x2, y) if with_residual else y), (x2, scale, r)


def _norm_bwd(eps, with_residual, fused_forward, res, ct):
  del eps, fused_forward
  x2, scale, r = res
  dres, dy = ct if with_residual else (None, ct)
  dx, ds = _backward(x2, scale.astype(jnp.float32), r, dy.astype(x2.dtype),
                     None if dres is None else dres.astype(x2.dtype))
  return dx, ds.astype(scale.dtype)


_norm.defvjp(_norm_fwd, _norm_bwd)


def rms_norm(x: Array, scale: Array, eps: float, *, with_residual: bool = False,
             fused_forward: bool = True):
  """RMS layer norm over the last axis: x [..., d], scale [d] -> y (x's dtype).

  `with_residual=True` returns `(x, y)`; use that x as the residual stream, so that the
  backward kernel adds its cotangent into dx. `fused_forward=False`: XLA's forward (which XLA
  may rematerialise), the backward kernel only. Runs in Pallas' interpreter off GPU (tests).
  Reverse-mode only (a `custom_vjp`): `jax.jvp` / `jax.jacfwd` need `norm_impl="xla"`.
  """
  d = x.shape[-1]
  if scale.shape != (d,):
    raise ValueError(f"rms_norm: scale must be [{d}], got {scale.shape}.")
  out = _norm(x.reshape(-1, d), scale, float(eps), with_residual, bool(fused_forward))
  if with_residual:  # the residual's cotangent reaches the kernel through _norm's first output
    return out[0].reshape(x.shape), out[1].reshape(x.shape)
  return out.reshape(x.shape)
