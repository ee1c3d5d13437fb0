"""T5 v1.1's gated-GELU output projection, `(gelu(gate) * lin) @ wo`, with a fused backward
kernel for GPUs (Pallas, Triton backend).

XLA's backward runs the GEMM `dh = dout @ wo^T`, writes dh [tokens, d_ff] and reads it back in
an elementwise pass with `gate` and `lin` to write `d_gate` and `d_lin`: at T5-base b256 on an
H100 that pass alone took 0.88 ms per encoder layer, at HBM bandwidth (bench/NOTES.md row 113).
Here one kernel computes each [bm, bn] tile of dh on the tensor cores and applies the gated
GELU's backward to it in registers: dh never reaches memory, and is kept in float32 until
`d_gate` and `d_lin` are rounded.

`projection(gate, lin, wo)` is a `custom_vjp`. Its forward is XLA's (the product, then the GEMM)
and keeps `gate`, `lin` and the product `h` for the backward, as `layers.gated_gelu` does (not
gelu(gate)); its backward runs the kernel when the shapes tile (`tiles`), else the same maths in
jnp. `dwo = h^T @ dout` stays an XLA GEMM. Off GPUs the kernel runs in Pallas' interpreter.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

Array = Any

_C = math.sqrt(2.0 / math.pi)  # the tanh approximation's constants (jax.nn.gelu, T5X, HF)
_A = 0.044715


@dataclasses.dataclass(frozen=True)
class KernelOptions:
  """The backward kernel's tiling: a [block_m, block_n] tile of dh per program, block_k of the
  contraction (d_model) per step; Triton's warps and pipeline stages."""
  block_m: int = 128
  block_n: int = 128
  block_k: int = 64
  num_warps: int = 8
  num_stages: int = 3
  prefetch: bool = False  # load the gate / lin tiles before the contraction loop


OPTIONS = KernelOptions()


def gelu_product(gate: Array, lin: Array) -> Array:
  """gelu(gate) * lin with the tanh-approximate GELU (T5 v1.1's gated feed-forward)."""
  return jax.nn.gelu(gate, approximate=True) * lin


def _gelu_grads(dh, gate, lin):
  """(d_gate, d_lin) float32 from dh, gate, lin (float32): d(gelu(g) l) = dh (gelu'(g) l, gelu(g))."""
  t = jnp.tanh(_C * (gate + _A * gate * gate * gate))
  gelu = 0.5 * gate * (1.0 + t)
  dgelu = 0.5 * (1.0 + t) + 0.5 * gate * (1.0 - t * t) * _C * (1.0 + 3.0 * _A * gate * gate)
  return dh * lin * dgelu, dh * gelu


def tiles(tokens: int, d_ff: int, d_model: int, opts: KernelOptions | None = None) -> bool:
  """Whether the kernel takes these shapes: every dim a multiple of its block (default
  `OPTIONS`)."""
  opts = opts or OPTIONS
  return (tokens % opts.block_m == 0 and d_ff % opts.block_n == 0
          and d_model % opts.block_k == 0)


def _bwd_kernel(dout_ref, wo_ref, gate_ref, lin_ref, dgate_ref, dlin_ref, *,
                opts: KernelOptions):
  # dout [m, e], wo [f, e], gate / lin / d_gate / d_lin [m, f]; whole arrays, tiles by index
  bm, bn, bk = opts.block_m, opts.block_n, opts.block_k
  # grid (f blocks, m blocks): the programs of one row block start together and share its
  # dout rows in L2 (wo, [f, e], is a few MB and stays there)
  j, i = pl.program_id(0), pl.program_id(1)
  rows, cols = pl.ds(i * bm, bm), pl.ds(j * bn, bn)

  if opts.prefetch:
    gate, lin = gate_ref[rows, cols], lin_ref[rows, cols]

  def step(t, acc):
    ks = pl.ds(t * bk, bk)
    return acc + jax.lax.dot_general(dout_ref[rows, ks], wo_ref[cols, ks],
                                     (((1,), (1,)), ((), ())),
                                     preferred_element_type=jnp.float32)

  dh = jax.lax.fori_loop(0, dout_ref.shape[1] // bk, step,
                         jnp.zeros((bm, bn), jnp.float32))  # [bm, bn] f32
  if not opts.prefetch:
    gate, lin = gate_ref[rows, cols], lin_ref[rows, cols]
  d_gate, d_lin = _gelu_grads(dh, gate.astype(jnp.float32), lin.astype(jnp.float32))
  dgate_ref[rows, cols] = d_gate.astype(dgate_ref.dtype)
  dlin_ref[rows, cols] = d_lin.astype(dlin_ref.dtype)


def backward_kernel(dout: Array, wo: Array, gate: Array, lin: Array, *,
                    opts: KernelOptions | None = None, interpret: bool | None = None):
  """(d_gate, d_lin) [m, f] in gate's dtype from dout [m, e], wo [f, e], gate, lin [m, f]."""
  opts = opts or OPTIONS
  m, f = gate.shape
  e = dout.shape[1]
  if not tiles(m, f, e, opts):
    raise ValueError(f"gated_gelu.backward_kernel: shapes tokens={m}, d_ff={f}, d_model={e} "
                     f"must be multiples of the blocks ({opts.block_m}, {opts.block_n}, "
                     f"{opts.block_k}); `projection` falls back to jnp for such shapes.")
  if interpret is None:
    interpret = jax.default_backend() != "gpu"
  params = None
  if not interpret:
    from jax.experimental.pallas import triton as plgpu
    params = plgpu.CompilerParams(num_warps=opts.num_warps, num_stages=opts.num_stages)
  out = jax.ShapeDtypeStruct((m, f), gate.dtype)
  return pl.pallas_call(
      functools.partial(_bwd_kernel, opts=opts), grid=(f // opts.block_n, m // opts.block_m),
      out_shape=(out, out), compiler_params=params, interpret=interpret,
      name="flanjax_gated_gelu_bwd")(dout, wo, gate, lin)


def reference_backward(dout: Array, wo: Array, gate: Array, lin: Array):
  """`backward_kernel`'s maths in jnp (float32 dh, as the kernel keeps it)."""
  dh = jnp.dot(dout, wo.T, preferred_element_type=jnp.float32)
  d_gate, d_lin = _gelu_grads(dh, gate.astype(jnp.float32), lin.astype(jnp.float32))
  return d_gate.astype(gate.dtype), d_lin.astype(gate.dtype)


@jax.custom_vjp
def projection(gate: Array, lin: Array, wo: Array) -> Array:
  """`(gelu(gate) * lin) @ wo`: gate, lin [..., f], wo [f, e] -> [..., e] (the operands'
  dtype). Reverse-mode only; the backward fuses dh's GEMM with the GELU's backward."""
  return _projection_fwd(gate, lin, wo)[0]


def _projection_fwd(gate, lin, wo):
  h = gelu_product(gate, lin)  # [..., f]
  return jnp.dot(h, wo), (gate, lin, h, wo)


def _projection_bwd(res, dout):
  gate, lin, h, wo = res
  f, e = wo.shape
  g2, l2 = gate.reshape(-1, f), lin.reshape(-1, f)  # [m, f]
  d2 = dout.reshape(-1, e).astype(gate.dtype)  # [m, e]
  backward = backward_kernel if tiles(g2.shape[0], f, e) else reference_backward
  d_gate, d_lin = backward(d2, wo.astype(gate.dtype), g2, l2)
  dwo = jnp.dot(h.reshape(-1, f).T, d2)  # [f, e]
  return d_gate.reshape(gate.shape), d_lin.reshape(lin.shape), dwo.astype(wo.dtype)


projection.defvjp(_projection_fwd, _projection_bwd)
