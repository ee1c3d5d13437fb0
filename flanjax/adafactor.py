"""Adafactor with its reductions fused into two Pallas kernels: `optax.adafactor`'s maths and state.

T5's Adafactor (factored second moments, update clipping, parameter scale, no momentum) needs,
for each factored matrix g [a, b] with params p, three reductions before the update itself:
the row and column means of g^2, the RMS of the unclipped update u = g * rf * cf, and the RMS
of p. As XLA compiles `optax.adafactor`, they read g three times and p twice (T5-xl on an H100:
20.7 ms of reductions for 11.4 GB of fp32 params, bench/NOTES.md row 120). Here one kernel
reads g and p once for the row sums, column sums (per row block) and p's row sums of squares,
and a second reads g once for the sum of u^2: three reads where there were five. The update
stays an XLA expression of g, which XLA fuses into `optax.apply_updates` (one read of g and p,
one write of p).

`adafactor(...)` returns a transformation whose state is the one `optax.adafactor` builds for
the same arguments (checkpoints move between the two) and whose updates equal optax's up to
float32 summation order (tests/test_adafactor.py). `impl="auto"` runs the kernels on a GPU
with at most one device in the mesh (params whole on each device; under a mesh of several,
and on other backends, optax's own update runs); "pallas" forces them ("interpret" runs them in
Pallas' interpreter: CPU tests); "optax" never.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import pallas as pl

from flanjax.errors import FlanjaxError

IMPLS = ("auto", "pallas", "interpret", "optax")
# Kernel tiles: rows per program, columns per step (powers of two dividing the matrix's dims).
BLOCK_ROWS = 64
BLOCK_COLS = 128


def factored_dims(shape, factored: bool, min_dim_size_to_factor: int):
  """(d1, d0): the second largest and the largest dim, or None when not factored: the choice
  `optax.adafactor` makes (its `_factored_dims`), so that the state shapes match."""
  if not factored or len(shape) < 2:
    return None
  order = np.argsort(shape)
  if shape[order[-2]] < min_dim_size_to_factor:
    return None
  return int(order[-2]), int(order[-1])


def _fit(n: int, cap: int) -> int:
  """The largest power of two <= cap dividing n (1 if n is odd)."""
  blk = cap
  while blk > 1 and n % blk:
    blk //= 2
  return blk


def _compiler_params(interpret: bool):
  if interpret:
    return None
  from jax.experimental.pallas import triton as plgpu
  return plgpu.CompilerParams(num_warps=4, num_stages=2)


def _tiles(shape) -> tuple[int, int]:
  a, b = shape
  return _fit(a, BLOCK_ROWS), _fit(b, BLOCK_COLS)


def kernels_apply(shape) -> bool:
  """Whether the kernels take a matrix of this shape: 2-D, rows a multiple of 8 and columns of
  32 (smaller tiles than that would starve the GPU; such leaves take XLA's reductions)."""
  if len(shape) != 2:
    return False
  br, bc = _tiles(shape)
  return br >= 8 and bc >= 32


def _square_sums_kernel(g_ref, p_ref, g_rows_ref, g_cols_ref, p_rows_ref, *, br: int, bc: int):
  """Program i: rows [i*br, (i+1)*br) of g [a, b] (and p), `bc` columns a step: sums of g^2 over
  the columns (g_rows [a]), over its rows (g_cols [a/br, b]) and of p^2 over the columns
  (p_rows [a]), in float32."""
  i = pl.program_id(0)
  rows = pl.ds(i * br, br)

  def body(c, carry):
    g_acc, p_acc = carry
    cols = pl.ds(c * bc, bc)
    g = g_ref[rows, cols].astype(jnp.float32)  # [br, bc]
    sq = g * g
    g_cols_ref[i, cols] = jnp.sum(sq, axis=0)
    g_acc = g_acc + jnp.sum(sq, axis=1)
    if p_ref is not None:
      p = p_ref[rows, cols].astype(jnp.float32)
      p_acc = p_acc + jnp.sum(p * p, axis=1)
    return g_acc, p_acc

  zeros = jnp.zeros((br,), jnp.float32)
  g_acc, p_acc = jax.lax.fori_loop(0, g_ref.shape[1] // bc, body, (zeros, zeros))
  g_rows_ref[rows] = g_acc
  if p_rows_ref is not None:
    p_rows_ref[rows] = p_acc


def square_sums(g, p=None, *, interpret: bool = False):
  """(sum of g^2 over axis 1 [a], over axis 0 [b], sum of p^2 or None) of g [a, b], reading g
  (and p) once. Float32."""
  a, b = g.shape
  br, bc = _tiles(g.shape)
  out_shape = [jax.ShapeDtypeStruct((a,), jnp.float32),
               jax.ShapeDtypeStruct((a // br, b), jnp.float32)]
  if p is not None:
    out_shape.append(jax.ShapeDtypeStruct((a,), jnp.float32))

  def kernel(*refs):
    if p is None:
      g_ref, g_rows, g_cols = refs
      return _square_sums_kernel(g_ref, None, g_rows, g_cols, None, br=br, bc=bc)
    return _square_sums_kernel(*refs, br=br, bc=bc)

  outs = pl.pallas_call(kernel, grid=(a // br,), out_shape=out_shape,
                        compiler_params=_compiler_params(interpret), interpret=interpret,
                        name="flanjax_adafactor_sums")(*((g,) if p is None else (g, p)))
  p_sq = None if p is None else jnp.sum(outs[2])
  return outs[0], jnp.sum(outs[1], axis=0), p_sq


def _scaled_square_sum_kernel(g_ref, f0_ref, f1_ref, out_ref, *, br: int, bc: int):
  """Program i: sum over the columns of (g * f0[:, None] * f1[None, :])^2 for rows
  [i*br, (i+1)*br)."""
  i = pl.program_id(0)
  rows = pl.ds(i * br, br)
  f0 = f0_ref[rows]

  def body(c, acc):
    cols = pl.ds(c * bc, bc)
    u = g_ref[rows, cols].astype(jnp.float32) * f0[:, None] * f1_ref[cols][None, :]
    return acc + jnp.sum(u * u, axis=1)

  out_ref[rows] = jax.lax.fori_loop(0, g_ref.shape[1] // bc, body,
                                    jnp.zeros((br,), jnp.float32))


def scaled_square_sum(g, f0, f1, *, interpret: bool = False):
  """sum((g * f0[:, None] * f1[None, :])^2) of g [a, b], f0 [a], f1 [b], reading g once."""
  a, _ = g.shape
  br, bc = _tiles(g.shape)
  rows = pl.pallas_call(
      functools.partial(_scaled_square_sum_kernel, br=br, bc=bc), grid=(a // br,),
      out_shape=jax.ShapeDtypeStruct((a,), jnp.float32),
      compiler_params=_compiler_params(interpret), interpret=interpret,
      name="flanjax_adafactor_clip")(g, f0.astype(jnp.float32), f1.astype(jnp.float32))
  return jnp.sum(rows)


def _decay_rate(count, exponent: float):
  """optax's second-moment decay 1 - (step + 1)^-exponent."""
  return 1.0 - jnp.asarray(count + 1, jnp.float32) ** (-exponent)


def _use_kernels(impl: str) -> tuple[bool, bool]:
  """(run the kernels, in the interpreter) for `impl`, at trace time."""
  if impl == "optax":
    return False, False
  if impl == "interpret":
    return True, True
  if impl == "pallas":
    return True, False
  mesh = jax.sharding.get_abstract_mesh()
  whole = mesh.empty or mesh.size == 1
  return jax.default_backend() == "gpu" and whole, False


def adafactor(learning_rate, *, min_dim_size_to_factor: int = 128, decay_rate: float = 0.8,
              multiply_by_parameter_scale: bool = True, clipping_threshold: float | None = 1.0,
              factored: bool = True, eps: float = 1e-30,
              impl: str = "auto") -> optax.GradientTransformation:
  """`optax.adafactor(learning_rate, ...)` (no momentum, no weight decay, decay offset 0) with
  the reductions of factored matrices in two Pallas kernels (module docstring). `learning_rate`
  is a float or a schedule of the step count."""
  if impl not in IMPLS:
    raise FlanjaxError(f"adafactor impl={impl!r}: use one of {IMPLS}.")
  if clipping_threshold is not None and clipping_threshold < 1:
    raise FlanjaxError(f"adafactor clipping_threshold={clipping_threshold} must be >= 1 (or "
                       "None to turn clipping off), as in optax.")
  reference = optax.adafactor(
      learning_rate=learning_rate, min_dim_size_to_factor=min_dim_size_to_factor,
      decay_rate=decay_rate, multiply_by_parameter_scale=multiply_by_parameter_scale,
      clipping_threshold=clipping_threshold, factored=factored, eps=eps)
  scheduled = callable(learning_rate)
  lr_index = 2 if clipping_threshold is not None else 1  # in optax's chain of states

  def update_fn(grads, state, params=None):
    if params is None:
      raise FlanjaxError("flanjax.adafactor.update needs the params (as optax's adafactor).")
    kernels, interpret = _use_kernels(impl)
    if not kernels:
      return reference.update(grads, state, params)
    stats = state[0]
    count = stats.count
    beta = _decay_rate(count, decay_rate)
    if scheduled:
      lr_state = state[lr_index]
      lr = jnp.asarray(learning_rate(lr_state.count), jnp.float32)
    else:
      lr = jnp.asarray(learning_rate, jnp.float32)

    def one(g, v_row, v_col, v, p):
      dims = factored_dims(p.shape, factored, min_dim_size_to_factor)
      new_row = jnp.zeros((1,), p.dtype)
      new_col = jnp.zeros((1,), p.dtype)
      new_v = jnp.zeros((1,), p.dtype)
      p_sq = None
      if dims is not None:
        d1, d0 = dims
        if kernels_apply(g.shape):
          sum1, sum0, p_sq = square_sums(g, p if multiply_by_parameter_scale else None,
                                         interpret=interpret)
          sums = (sum0, sum1)  # [dim 1 (reduced over 0)], [dim 0 (reduced over 1)]
          over_d0, over_d1 = sums[d0], sums[d1]
        else:
          sq = jnp.square(g.astype(jnp.float32))
          over_d0, over_d1 = jnp.sum(sq, axis=d0), jnp.sum(sq, axis=d1)
        mean_d0 = over_d0 / g.shape[d0] + eps  # mean(g^2 + eps) over d0
        mean_d1 = over_d1 / g.shape[d1] + eps
        new_row = (beta * v_row + (1.0 - beta) * mean_d0).astype(p.dtype)
        new_col = (beta * v_col + (1.0 - beta) * mean_d1).astype(p.dtype)
        reduced_d1 = d1 - 1 if d1 > d0 else d1  # d1's axis in new_row (d0 removed)
        row_factor = (new_row / jnp.mean(new_row, axis=reduced_d1, keepdims=True)) ** -0.5
        col_factor = new_col ** -0.5  # along dim d0 (d1 removed)
        f0, f1 = (col_factor, row_factor) if d1 == 1 else (row_factor, col_factor)
        # f0 runs along dim 0, f1 along dim 1 (for 2-D g; higher ranks take XLA's path below)
        if g.ndim == 2:
          u_raw = g * f0[:, None] * f1[None, :]
          u_sq = (scaled_square_sum(g, f0, f1, interpret=interpret)
                  if kernels_apply(g.shape) else jnp.sum(jnp.square(u_raw)))
        else:
          u_raw = (g * jnp.expand_dims(row_factor, axis=d0)
                   * jnp.expand_dims(col_factor, axis=d1))
          u_sq = jnp.sum(jnp.square(u_raw))
      else:
        new_v = (beta * v + (1.0 - beta) * (jnp.square(g) + eps)).astype(p.dtype)
        u_raw = g * new_v ** -0.5
        u_sq = jnp.sum(jnp.square(u_raw))
      scale = lr
      if clipping_threshold is not None:
        scale = scale / jnp.maximum(1.0, jnp.sqrt(u_sq / g.size) / clipping_threshold)
      if multiply_by_parameter_scale:
        if p_sq is None:
          p_sq = jnp.sum(jnp.square(p.astype(jnp.float32)))
        scale = scale * jnp.maximum(jnp.sqrt(p_sq / p.size), 1e-3)
      return (-scale * u_raw).astype(g.dtype), new_row, new_col, new_v

    out = jax.tree.map(one, grads, stats.v_row, stats.v_col, stats.v, params)
    leaves = lambda k: jax.tree.map(lambda o: o[k], out, is_leaf=lambda x: isinstance(x, tuple))
    new_state = list(state)
    new_state[0] = stats._replace(count=optax.safe_increment(count), v_row=leaves(1),
                                  v_col=leaves(2), v=leaves(3))
    if scheduled:
      new_state[lr_index] = state[lr_index]._replace(
          count=optax.safe_increment(state[lr_index].count))
    return leaves(0), type(state)(new_state)

  return optax.GradientTransformation(reference.init, update_fn)
