"""T5 building blocks in Flax linen, with T5X parameter names and logical axis names.

Every parameter is declared through `nn.with_logical_partitioning`, so `nn.get_partition_spec`
gives logical PartitionSpecs; activations are constrained with `nn.with_logical_constraint`
(no-ops without axis rules / mesh). Compute runs in `config.dtype`, layer norm and softmax in fp32.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flanjax import dropout, flash_attention, partitioning, rms_norm
from flanjax.config import T5Config

Array = Any
NEG_INF = -1e10  # additive mask value (T5X's convention); finite so fully masked rows stay finite

# T5X's initialisers of T5 v1.1 (t5x/examples/t5, flaxformer), where training from scratch starts.
# Fans come from each layer's own 2-D shape (`nn.scan` initialises one layer at a time). The
# attention kernels take `Dense(init_std=fan_in ** -0.5)`, the query's further divided by
# sqrt(head_dim): T5X's ATTENTION_KERNEL_INIT, variance_scaling(1.0, "fan_in", "normal").
EMBEDDING_INIT = nn.initializers.normal(1.0)
RELPOS_BIAS_INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
MLP_KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
FINAL_KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def dtype_of(name: str):
  return jnp.dtype(name)


def constrain(x: Array, names: tuple[str | None, ...]) -> Array:
  return nn.with_logical_constraint(x, names)


def _param(module: nn.Module, name: str, init, shape, names, dtype):
  return module.param(name, nn.with_logical_partitioning(init, names), shape, dtype)


class LayerNorm(nn.Module):
  """T5 RMS layer norm (no mean subtraction, no bias), computed in fp32.

  `with_residual=True` returns `(x, y)`: use that x as the residual stream. On the fused Pallas
  kernel (`config.norm_impl`, `flanjax/rms_norm.py`) the residual's cotangent then joins the
  norm's input gradient inside the backward kernel; on XLA it is x itself.
  """
  config: T5Config

  @nn.compact
  def __call__(self, x: Array, with_residual: bool = False):
    cfg = self.config
    scale = _param(self, "scale", nn.initializers.ones, (x.shape[-1],), ("embed",),
                   dtype_of(cfg.param_dtype))
    axes = _pallas_norm_axes(cfg, x)
    if axes is not None:
      return _pallas_norm(x, scale, cfg.layer_norm_epsilon, with_residual, axes,
                          fused_forward=cfg.norm_impl == "pallas")
    y = rms_norm.reference(x, scale, cfg.layer_norm_epsilon, dtype=dtype_of(cfg.dtype))
    return (x, y) if with_residual else y


def kernel_batch_axes(x: Array):
  """Where a row-wise Pallas kernel (the fused norm, the loss's statistics) can run on x
  [batch, ...]: () without a mesh of several devices; the mesh axes of x's batch dim when they
  hold every device (pure data parallelism: each shard handles its own rows, under
  `jax.shard_map`); None otherwise (use XLA's ops)."""
  found = _logical_mesh_axes(("batch",), x.shape[:1])
  if found is None:
    return None
  names = () if found[0] is None else (found[0] if isinstance(found[0], tuple) else (found[0],))
  mesh = jax.sharding.get_abstract_mesh()
  devices = 1 if mesh.empty else mesh.size
  return names if math.prod(mesh.shape[a] for a in names) == devices else None


def _pallas_norm_axes(cfg: T5Config, x: Array):
  """The batch mesh axes to run the fused norm over (`kernel_batch_axes`), or None for XLA's:
  `norm_impl` "pallas" / "pallas_backward" ("auto" on a GPU backend), x in the compute dtype
  and rows split over every device (or one)."""
  impl = cfg.norm_impl
  if impl == "auto":
    impl = "pallas_backward" if jax.default_backend() == "gpu" else "xla"
  if impl == "xla" or x.dtype != dtype_of(cfg.dtype):
    return None
  return kernel_batch_axes(x)


def _pallas_norm(x: Array, scale: Array, eps: float, with_residual: bool, axes: tuple, *,
                 fused_forward: bool):
  fn = functools.partial(rms_norm.rms_norm, eps=eps, with_residual=with_residual,
                         fused_forward=fused_forward)
  if not axes:
    return fn(x, scale)
  from jax.sharding import PartitionSpec as P
  spec = P(axes)
  # The scale's cotangent is summed over the batch shards by the map's transpose.
  return jax.shard_map(fn, in_specs=(spec, P()), out_specs=(spec, spec) if with_residual
                       else spec, check_vma=False)(x, scale)


@jax.custom_vjp
def dot_fp32_out(x: Array, w: Array) -> Array:
  """`x [..., d] @ w [d, n]` in the operands' dtype with a float32 result (the output logits).

  The backward casts the float32 cotangent to the operands' dtype before its two matmuls, as the
  cotangent of every other (bf16-output) layer already is: bf16 tensor-core GEMMs instead of two
  float32 (tf32) GEMMs over the [tokens, vocab] gradient. With float32 operands it is exact.
  """
  return jnp.dot(x, w, preferred_element_type=jnp.float32)


def _dot_fp32_out_fwd(x, w):
  return dot_fp32_out(x, w), (x, w)


def _dot_fp32_out_bwd(res, g):
  x, w = res
  g = g.astype(x.dtype)  # [..., n]
  dx = jnp.dot(g, w.T)  # [..., d]
  dw = jnp.dot(x.reshape(-1, x.shape[-1]).T, g.reshape(-1, g.shape[-1]),
               preferred_element_type=jnp.float32)  # [d, n]
  return dx, dw.astype(w.dtype)


dot_fp32_out.defvjp(_dot_fp32_out_fwd, _dot_fp32_out_bwd)


class Dense(nn.Module):
  """A bias-free dense layer with a 2-D `[in, out]` kernel and logical axis names."""
  features: int
  axes: tuple[str, str]
  config: T5Config
  init_std: float = 1.0
  kernel_init: Any = None  # an initialiser of the [in, out] kernel; None: normal(init_std)
  fp32_out: bool = False
  kernel_only: bool = False  # return the kernel in the compute dtype, not x @ kernel

  @nn.compact
  def __call__(self, x: Array) -> Array:
    cfg = self.config
    init = self.kernel_init or nn.initializers.normal(self.init_std)
    kernel = _param(self, "kernel", init, (x.shape[-1], self.features), self.axes,
                    dtype_of(cfg.param_dtype))  # [in, out]
    dtype = dtype_of(cfg.dtype)
    if self.kernel_only:
      return kernel.astype(dtype)
    if self.fp32_out:
      return dot_fp32_out(x.astype(dtype), kernel.astype(dtype))
    return jnp.dot(x.astype(dtype), kernel.astype(dtype))


@jax.custom_vjp
def stacked_projection(x: Array, kernels: tuple[Array, ...]) -> tuple[Array, ...]:
  """Attention projections x w for each kernel (x [b, s, e], w [e, h, d] -> [b, s, h, d]), one
  GEMM each. The backward stacks the cotangents into [b, s, n, h, d] and runs one GEMM for dx
  and one for every kernel's gradient. Use it where those cotangents are the slices of one
  buffer (flanjax's attention kernels: `flash_attention.joint_gradients`): XLA then drops the
  stack, and dx needs no separate add of several GEMMs' outputs (XLA folds at most one add
  into a GEMM; bench/NOTES.md rows 94, 107)."""
  return _stacked_projection_fwd(x, kernels)[0]


def _stacked_projection_fwd(x, kernels):
  return tuple(jnp.einsum("bse,ehd->bshd", x, w) for w in kernels), (x, kernels)


def _stacked_projection_bwd(res, g):
  x, kernels = res
  grads = jnp.stack(g, axis=2).astype(x.dtype)  # [b, s, n, h, d]
  w = jnp.stack(kernels, axis=1)  # [e, n, h, d]
  dx = jnp.einsum("bsnhd,enhd->bse", grads, w)
  dw = jnp.einsum("bse,bsnhd->enhd", x, grads)
  return dx, tuple(dw[:, i].astype(k.dtype) for i, k in enumerate(kernels))


stacked_projection.defvjp(_stacked_projection_fwd, _stacked_projection_bwd)


class Embed(nn.Module):
  """Token embedding `[vocab, embed]`; `attend` gives tied output logits."""
  config: T5Config

  def setup(self):
    cfg = self.config
    self.embedding = _param(self, "embedding", EMBEDDING_INIT,
                            (cfg.vocab_size, cfg.d_model), ("vocab", "embed"),
                            dtype_of(cfg.param_dtype))

  def __call__(self, tokens: Array) -> Array:
    x = jnp.take(self.embedding, tokens, axis=0)  # [batch, length, embed]
    return x.astype(dtype_of(self.config.dtype))

  def attend(self, x: Array) -> Array:
    dtype = dtype_of(self.config.dtype)
    return dot_fp32_out(x.astype(dtype), self.embedding.astype(dtype).T)


def relative_position_bucket(relative_position: Array, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> Array:
  """T5's bucketing of `memory_position - query_position` (same maths as HF / Mesh TF)."""
  ret = jnp.zeros_like(relative_position)
  n = relative_position
  if bidirectional:
    num_buckets //= 2
    ret = ret + (n > 0).astype(jnp.int32) * num_buckets
    n = jnp.abs(n)
  else:
    n = -jnp.minimum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  n_safe = jnp.maximum(n, 1).astype(jnp.float32)
  large = max_exact + (jnp.log(n_safe / max_exact) / math.log(max_distance / max_exact)
                       * (num_buckets - max_exact)).astype(jnp.int32)
  large = jnp.minimum(large, num_buckets - 1)
  return ret + jnp.where(is_small, n, large)


def _static_offset_buckets(q_len: int, k_len: int, bidirectional: bool, num_buckets: int,
                           max_distance: int) -> tuple[int, ...]:
  """Bucket of each relative offset k - q, for offsets -(q_len-1) .. k_len-1 (host ints)."""
  offsets = np.arange(-(q_len - 1), k_len, dtype=np.int32)
  with jax.ensure_compile_time_eval():
    buckets = relative_position_bucket(jnp.asarray(offsets), bidirectional, num_buckets,
                                       max_distance)
  return tuple(int(b) for b in np.asarray(buckets))


def _diagonal_sums(g: Array) -> Array:
  """g [h, q, k] -> s [h, q+k-1] with s[:, k - q + q_len - 1] = sum of g[:, q, k] (no scatter).

  Rows are flipped, padded by q_len and re-read with a row stride one shorter, which lines every
  diagonal up in one column.
  """
  h, lq, lk = g.shape
  g = jnp.pad(jnp.flip(g, axis=1), ((0, 0), (0, 0), (0, lq)))  # [h, q, k+q]
  g = g.reshape(h, lq * (lk + lq))[:, : lq * (lk + lq - 1)].reshape(h, lq, lk + lq - 1)
  return jnp.sum(g, axis=1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _toeplitz_bias(rel_embedding: Array, q_len: int, k_len: int,
                   offset_buckets: tuple[int, ...]) -> Array:
  """rel_embedding [h, n] -> bias [1, h, q_len, k_len] for positions 0..len-1 (gathers only)."""
  per_offset = rel_embedding[:, np.asarray(offset_buckets)]  # [h, q+k-1]
  index = np.arange(k_len)[None, :] - np.arange(q_len)[:, None] + q_len - 1  # [q, k]
  return per_offset[:, index][None]


def _toeplitz_bias_fwd(rel_embedding, q_len, k_len, offset_buckets):
  # A zero-size array carries the bucket count (custom_vjp residuals must be arrays).
  return (_toeplitz_bias(rel_embedding, q_len, k_len, offset_buckets),
          jnp.zeros((0,) + rel_embedding.shape, rel_embedding.dtype))


def _toeplitz_bias_bwd(q_len, k_len, offset_buckets, res, g):
  num_buckets = res.shape[2]
  per_offset = _diagonal_sums(jnp.sum(g.astype(jnp.float32), axis=0))  # [h, q+k-1]
  onehot = np.eye(num_buckets, dtype=np.float32)[np.asarray(offset_buckets)]  # [q+k-1, n]
  d_rel = jnp.dot(per_offset, onehot, precision=jax.lax.Precision.HIGHEST)  # [h, n]
  return (d_rel.astype(res.dtype),)


_toeplitz_bias.defvjp(_toeplitz_bias_fwd, _toeplitz_bias_bwd)


@jax.custom_vjp
def _gathered_bias(rel_embedding: Array, buckets: Array) -> Array:
  """rel_embedding [h, n], buckets int [b, q, k] -> bias [b, h, q, k] (gather forward)."""
  return jnp.transpose(rel_embedding[:, buckets], (1, 0, 2, 3))


def _gathered_bias_fwd(rel_embedding, buckets):
  return (_gathered_bias(rel_embedding, buckets),
          (buckets, jnp.zeros((0,) + rel_embedding.shape, rel_embedding.dtype)))


def _gathered_bias_bwd(res, g):
  # One-hot matmul (as T5X) rather than the gather's scatter-add: no atomics on 32 buckets.
  buckets, like = res
  onehot = jax.nn.one_hot(buckets, like.shape[2], dtype=jnp.float32)  # [b, q, k, n]
  d_rel = jnp.einsum("bhqk,bqkn->hn", g.astype(jnp.float32), onehot)
  return d_rel.astype(like.dtype), None


_gathered_bias.defvjp(_gathered_bias_fwd, _gathered_bias_bwd)


class RelativePositionBiases(nn.Module):
  """Relative position bias shared by all layers of a stack: `rel_embedding [heads, buckets]`.

  `for_lengths(q_len, k_len)` is the bias of plain positions 0..len-1 (batch 1): a Toeplitz
  matrix gathered from one value per offset, whose gradient sums diagonals (no scatter, no
  one-hot). `__call__(q_pos, k_pos)` takes arbitrary (e.g. packed) positions.
  """
  config: T5Config
  bidirectional: bool

  def setup(self):
    cfg = self.config
    # fan_avg is symmetric in the two axes: T5X's values' distribution in this layout
    self.rel_embedding = _param(self, "rel_embedding", RELPOS_BIAS_INIT,
                                (cfg.num_heads, cfg.relative_attention_num_buckets),
                                ("heads", "relpos_buckets"), dtype_of(cfg.param_dtype))

  def __call__(self, q_pos: Array, k_pos: Array) -> Array:
    """q_pos [b|1, q], k_pos [b|1, k] int32 -> bias float32 [b|1, heads, q, k]."""
    cfg = self.config
    rel = k_pos[:, None, :] - q_pos[:, :, None]  # [b, q, k]
    buckets = relative_position_bucket(rel, self.bidirectional,
                                       cfg.relative_attention_num_buckets,
                                       cfg.relative_attention_max_distance)
    return _gathered_bias(self.rel_embedding.astype(jnp.float32), buckets)

  def for_lengths(self, q_len: int, k_len: int) -> Array:
    """The bias of positions 0..q_len-1 against 0..k_len-1: float32 [1, heads, q_len, k_len]."""
    cfg = self.config
    offset_buckets = _static_offset_buckets(q_len, k_len, self.bidirectional,
                                            cfg.relative_attention_num_buckets,
                                            cfg.relative_attention_max_distance)
    return _toeplitz_bias(self.rel_embedding.astype(jnp.float32), q_len, k_len, offset_buckets)


def module_dropout_seed(module: nn.Module, deterministic: bool, rate: float,
                        seed: Array | None = None) -> Array | None:
  """The dropout seed of `module`: `seed` when its caller passed one, else one
  `make_rng("dropout")` key folded to uint32 (`flanjax.dropout`); None without dropout. Each
  dropout site of the module hashes it with its own site number: one threefry per layer, not
  two per site."""
  if deterministic or rate == 0.0:
    return None
  return seed if seed is not None else dropout.seed_from_key(module.make_rng("dropout"))


def einsum_attention(q: Array, k: Array, v: Array, bias: Array | None, mask: Array | None,
                     dropout_seed: Array | None = None, dropout_rate: float = 0.0,
                     float32_logits: bool = True) -> Array:
  """Reference attention, no 1/sqrt(d) scaling (T5's convention).

  q [b, q, h, d], k/v [b, k, h, d], bias [b|1, h, q, k] float32, mask bool [b|1, 1|h, q, k].
  With a uint32 `dropout_seed`, attention probabilities are dropped at `dropout_rate` with the
  Pallas kernel's mask (`flash_attention.dropout_keep_mask`: the same seed drops the same
  probabilities on both paths, and a recomputation under `jax.checkpoint` redraws the same
  mask). `float32_logits=False`
  keeps the scores (QK^T + bias) in q's dtype, as T5X's default; the softmax is fp32 either way.
  Returns [b, q, h, d] in q's dtype.
  """
  score_dtype = jnp.float32 if float32_logits else q.dtype
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=score_dtype)
  if bias is not None:
    logits = logits + bias.astype(score_dtype)
  if mask is not None:
    logits = jnp.where(mask, logits, jnp.asarray(NEG_INF, score_dtype))
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)  # [b, h, q, k]
  if dropout_seed is not None and dropout_rate > 0:
    b, h, q_len, k_len = probs.shape
    keep = flash_attention.dropout_keep_mask(dropout_seed, b, h, q_len, k_len, dropout_rate)
    probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0)
  return jnp.einsum("bhqk,bkhd->bqhd", probs.astype(v.dtype), v)


def fused_attention(q: Array, k: Array, v: Array, bias: Array | None, *, is_causal: bool,
                    q_lengths: Array | None, kv_lengths: Array | None,
                    implementation: str) -> Array:
  """`jax.nn.dot_product_attention` with T5's scale 1 and the relative bias of batch 1.

  Masks are given as lengths (right padding) and `is_causal`, never as a `mask=` array: the
  cuDNN path folds a mask into the bias and then drops the bias gradient.
  """
  if bias is not None:
    if bias.shape[0] != 1:
      raise ValueError(f"fused attention needs a relative bias of batch 1, got {bias.shape}.")
    bias = bias.astype(q.dtype)
  return jax.nn.dot_product_attention(
      q, k, v, bias=bias, scale=1.0, is_causal=is_causal,
      query_seq_lengths=q_lengths, key_value_seq_lengths=kv_lengths,
      implementation=implementation)


def _logical_mesh_axes(names: tuple[str, ...], dims: tuple[int, ...]):
  """The mesh axes of each logical dim under the current mesh and logical rules: all None
  without a mesh of several devices, None (unknown) with one but no rules in context. An axis
  that does not divide its dimension is left unsharded."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.size == 1:
    return (None,) * len(names)
  try:
    spec = nn.logical_to_mesh_axes(names)
  except Exception:  # noqa: BLE001 - no rules in context: nothing is sharded by name
    return None
  return tuple(partitioning.fit_spec(spec, dims, mesh))


def _mesh_axes_for(batch: int, heads: int):
  """(batch mesh axes, head mesh axes) of the current mesh and logical rules, or None without a
  mesh of several devices (or when neither is sharded)."""
  out = _logical_mesh_axes(("batch", "heads"), (batch, heads))
  return None if out is None or out == (None, None) else out


def kernel_options(q_len: int, k_len: int, *, causal: bool, dropout_rate: float,
                   forward: str = "pallas",
                   self_attention: bool = False) -> flash_attention.FlashOptions:
  """The Pallas kernel's options for one T5 attention (in the interpreter off GPU): dK and dV
  in one buffer (`joint_dkv`), and dQ with them (`joint_dq`) only in self-attention, whose
  q, k and v are projections of one input, so that `MultiHeadAttention` can differentiate
  those projections as one GEMM (`stacked_projection`; bench/NOTES.md rows 107-108)."""
  opts = flash_attention.options_for(q_len, k_len, causal=causal, dropout_rate=dropout_rate,
                                     interpret=jax.default_backend() != "gpu")
  return dataclasses.replace(opts, forward=forward, joint_dkv=True, joint_dq=self_attention)


def pallas_attention(q: Array, k: Array, v: Array, bias: Array | None,
                     segments: tuple[Array, Array] | None, *, causal: bool,
                     dropout_rate: float, dropout_seed: Array | None,
                     kv_lengths: Array | None = None, forward: str = "pallas",
                     self_attention: bool = False) -> Array:
  """flanjax's Pallas flash attention (flanjax/flash_attention.py) for one T5 attention:
  per shard under a mesh, in the interpreter off GPU. Packed rows give `segments`; unpacked
  rows give `kv_lengths` (right padding), which skips blocks without a per-block branch.
  `forward="cudnn"`: cuDNN's fused forward, the kernel's backward (unpacked, no dropout)."""
  opts = kernel_options(q.shape[1], k.shape[1], causal=causal, dropout_rate=dropout_rate,
                        forward=forward, self_attention=self_attention)
  q_seg, kv_seg = segments if segments is not None else (None, None)
  return flash_attention.flash_attention(
      q, k, v, bias, q_segment_ids=q_seg, kv_segment_ids=kv_seg, kv_lengths=kv_lengths,
      causal=causal, dropout_rate=dropout_rate, dropout_seed=dropout_seed, options=opts,
      mesh_axes=_mesh_axes_for(q.shape[0], q.shape[2]))


class MultiHeadAttention(nn.Module):
  """T5 attention: query/key/value/out 2-D kernels `[embed, joined_kv]`, `[joined_kv, embed]`.

  Incremental decoding (`decode=True`) keeps a `cache` collection:
  - self-attention: `cached_key`/`cached_value` `[batch, decode_length, heads, head_dim]`,
    written at `decode_index` (the first, initialising call creates zeros);
  - cross-attention (`cross=True`): `cross_key`/`cross_value` `[batch, input_len, heads,
    head_dim]`, projected once from the encoder outputs by the initialising call and reused.
  """
  config: T5Config
  deterministic: bool = True
  decode: bool = False
  # "cudnn": jax.nn.dot_product_attention; "pallas": flash_attention; "cudnn_pallas":
  # flash_attention with cuDNN's forward; None: einsum
  fused_impl: str | None = None
  is_causal: bool = False  # used by the fused path (the einsum path takes `mask`)
  cross: bool = False
  decode_length: int | None = None  # self-attention cache length (default: the input length)

  @nn.compact
  def __call__(self, x_q: Array, x_kv: Array, bias: Array | None, mask: Array | None, *,
               kv_lengths: Array | None = None, decode_index: Array | None = None,
               segments: tuple[Array, Array] | None = None,
               dropout_seed: Array | None = None) -> Array:
    """`mask` is the einsum path's; `kv_lengths` (right padding) cuDNN's and the Pallas
    kernel's for unpacked rows; `segments` (query ids [b, q], key ids [b, k]) the kernel's for
    packed rows; `fused_impl` says which apply. `dropout_seed` (uint32, from the layer: see
    `flanjax.dropout`) seeds the attention dropout; without it, one is made from a
    `make_rng("dropout")` key."""
    cfg = self.config
    h, d, e = cfg.num_heads, cfg.head_dim, cfg.d_model
    dense = functools.partial(Dense, config=cfg)
    names = ("batch", "length", "heads", "kv")
    # T5X's ATTENTION_KERNEL_INIT (fan_in = e), the query's divided by sqrt(d)
    stds = {"query": (e * d) ** -0.5, "key": e ** -0.5, "value": e ** -0.5}
    kernel = self.fused_impl in ("pallas", "cudnn_pallas") and not self.decode
    self_attention = not self.cross and x_q is x_kv
    # which gradients the kernel returns as one buffer: their projections' backward is then
    # one stacked GEMM ("qkv", "kv" or "")
    joint = flash_attention.joint_gradients(
        (x_q.shape[0], x_q.shape[1], h, d), (x_kv.shape[0], x_kv.shape[1], h, d),
        bias is not None, kernel_options(x_q.shape[1], x_kv.shape[1], causal=self.is_causal,
                                         dropout_rate=cfg.dropout_rate,
                                         self_attention=self_attention)) if kernel else ""

    def project(x, *which):
      """One [batch, len, heads, kv] per projection named in `which`."""
      if joint == "".join(n[0] for n in which):
        ws = tuple(dense(h * d, ("embed", "joined_kv"), init_std=stds[n], name=n,
                         kernel_only=True)(x).reshape(e, h, d) for n in which)
        outs = stacked_projection(x.astype(ws[0].dtype), ws)
      else:
        outs = (dense(h * d, ("embed", "joined_kv"), init_std=stds[n], name=n)(x)
                for n in which)
        outs = (t.reshape(t.shape[:2] + (h, d)) for t in outs)
      return tuple(constrain(t, names) for t in outs)

    def project_kv():
      return project(x_kv, "key", "value")

    if joint == "qkv":  # (self-attention, not decoding)
      q, k, v = project(x_q, "query", "key", "value")
    else:
      (q,) = project(x_q, "query")
      if self.decode and self.cross:
        if self.has_variable("cache", "cross_key"):
          k = self.get_variable("cache", "cross_key")
          v = self.get_variable("cache", "cross_value")
        else:
          k, v = project_kv()
          self.variable("cache", "cross_key", lambda: k)
          self.variable("cache", "cross_value", lambda: v)
      elif self.decode:
        k, v = project_kv()
        initialized = self.has_variable("cache", "cached_key")
        length = self.decode_length or k.shape[1]
        shape = (k.shape[0], length) + k.shape[2:]
        cached_key = self.variable("cache", "cached_key", jnp.zeros, shape, k.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, shape, v.dtype)
        if initialized:
          if q.shape[1] != 1:
            raise ValueError(f"Incremental decoding takes one token per step, got {q.shape[1]}.")
          start = (0, decode_index, 0, 0)
          cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, k, start)
          cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, v, start)
          k, v = cached_key.value, cached_value.value
      else:
        k, v = project_kv()

    # (cuDNN is never picked with dropout: resolve_attention_impl)
    seed = module_dropout_seed(self, self.deterministic, cfg.dropout_rate, dropout_seed)
    if kernel:
      out = pallas_attention(q, k, v, bias, segments, causal=self.is_causal,
                             dropout_rate=cfg.dropout_rate if seed is not None else 0.0,
                             dropout_seed=seed, kv_lengths=kv_lengths,
                             forward="cudnn" if self.fused_impl == "cudnn_pallas"
                             else "pallas", self_attention=self_attention)
    elif self.fused_impl is not None and not self.decode:
      out = fused_attention(q, k, v, bias, is_causal=self.is_causal, q_lengths=None,
                            kv_lengths=kv_lengths, implementation=self.fused_impl)
    else:
      core = functools.partial(einsum_attention, dropout_rate=cfg.dropout_rate,
                               float32_logits=cfg.float32_attention_logits)
      if cfg.remat_policy == "attention" and not self.decode:
        # Keep no [b, h, q, k] scores for the backward pass: recompute them from q, k, v.
        core = jax.checkpoint(core)
      out = core(q, k, v, bias, mask, seed)
    out = constrain(out, ("batch", "length", "heads", "kv"))
    out = out.reshape(out.shape[:2] + (h * d,))  # [batch, q_len, joined_kv]
    return dense(e, ("joined_kv", "embed"), init_std=(h * d) ** -0.5, name="out")(out)


_GELU_2C = 2.0 * math.sqrt(2.0 / math.pi)


def gelu_product(gate: Array, lin: Array) -> Array:
  """gelu(gate) * lin with the tanh-approximate GELU (T5 v1.1's gated feed-forward).

  Written as gate * sigmoid(2c (gate + 0.044715 gate^3)), the same function as jax.nn.gelu's
  0.5 gate (1 + tanh(c (...))) since 0.5 (1 + tanh z) = sigmoid(2 z). XLA's GEMM rewriter folds
  the tanh form into the gate GEMM as cuBLASLt's GELU epilogue, which writes gelu(gate) and,
  for the backward, gate itself (`aux`): one [tokens, d_ff] write more per layer than this form,
  whose GELU is computed inside the product's fusion. T5-base b256 on an H100: 281.9 against
  285.3 ms (bench/NOTES.md row 116).
  """
  return gate * jax.nn.sigmoid(_GELU_2C * (gate + 0.044715 * gate * gate * gate)) * lin


# The same, keeping only `gate` and `lin` for the backward. Without the checkpoint XLA also
# stores gelu(gate), one more [tokens, d_ff] tensor written in the forward and read in the
# backward; recomputing it inside the backward's elementwise fusion is free, as that fusion
# reads `gate` anyway. T5-large b64 on an H100 needs 5.1 GB less memory at the same speed
# (bench/NOTES.md, row 54). Layers under their own remat recompute it anyway: nested there it
# costs 2 % (row 60), so `MlpBlock` uses it only without layer remat.
gated_gelu = jax.checkpoint(gelu_product)


# The MLP's hidden dropout: one mask per (row, feature), shared along the length, as T5X's
# MlpBlock and every other dropout of this model. A full [tokens, d_ff] mask cost a threefry
# draw per element in the forward pass and again in the backward pass (large fine-tuning b64:
# 260.2 vs 252.6 ms; bench/NOTES.md row 76; masks are hashes now, `flanjax.dropout`).
MLP_DROPOUT_BROADCAST_DIMS = (-2,)


class MlpBlock(nn.Module):
  """Gated-GELU (v1.1: wi_0, wi_1, tanh-approximate GELU) or ReLU (v1.0: wi) feed-forward."""
  config: T5Config
  deterministic: bool = True

  @nn.compact
  def __call__(self, x: Array, dropout_seed: Array | None = None) -> Array:
    """`dropout_seed` (uint32, see `flanjax.dropout`) seeds the hidden dropout; without it,
    one is made from a `make_rng("dropout")` key."""
    cfg = self.config
    dense = functools.partial(Dense, config=cfg, kernel_init=MLP_KERNEL_INIT)
    if cfg.gated:
      gate = dense(cfg.d_ff, ("embed", "mlp"), name="wi_0")(x)  # [batch, length, mlp]
      lin = dense(cfg.d_ff, ("embed", "mlp"), name="wi_1")(x)  # [batch, length, mlp]
      hidden = (gelu_product if cfg.layer_remat else gated_gelu)(gate, lin)  # see gated_gelu
    else:
      hidden = jax.nn.relu(dense(cfg.d_ff, ("embed", "mlp"), name="wi")(x))
    hidden = constrain(hidden, ("batch", "length", "mlp"))
    seed = module_dropout_seed(self, self.deterministic, cfg.dropout_rate, dropout_seed)
    hidden = dropout.apply(hidden, cfg.dropout_rate, seed, site=0,
                           broadcast_dims=MLP_DROPOUT_BROADCAST_DIMS)
    return dense(cfg.d_model, ("mlp", "embed"), name="wo")(hidden)  # [batch, length, embed]


def remat_policy(name: str):
  """Maps `T5Config.remat_policy` to the `jax.checkpoint` policy of a layer (None: save nothing).

  "attention" is not a layer policy: layers keep everything, and the einsum path's attention
  core (scores, softmax, dropout, weighted sum) is recomputed in the backward pass instead of
  keeping its `[b, h, q, k]` tensors (see `MultiHeadAttention`).
  """
  return {
      "minimal": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
      "dots_with_no_batch_dims": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
      "dots": jax.checkpoint_policies.checkpoint_dots,
      "full": None,
  }[name]


def numpy_dtype(name: str) -> np.dtype:
  return np.dtype(jnp.dtype(name))
