"""Fused (flash) attention for T5 on GPUs, written in Pallas (Triton backend).

What cuDNN's fused attention cannot do for T5 fine-tuning, this kernel does in one pass without
materialising `[batch, heads, q, k]` scores:
- the trainable relative bias of batch 1 (`[heads, q, k]`, shared by every row; read in the
  compute dtype, as cuDNN reads it), with its float32 gradient summed over the batch;
- packed rows: segment ids (a query sees only keys of its own segment; blocks whose segment
  ranges do not meet are skipped) and causal masking; unpacked rows: right padding as kv
  lengths (the loops stop at a row's last real key block);
- attention dropout drawn in-kernel from a counter-based hash of (seed, row, head, q, k), so the
  backward pass redraws the same mask without storing it.

T5 convention: no 1/sqrt(d) scaling. A query row with no visible key outputs zeros (its softmax
is empty) and passes no gradient; the einsum path gives such rows a uniform average instead, so
the two agree on every row that sees at least one key (padding rows are never read by the loss).

`flash_attention(q, k, v, ...)` is differentiable (custom VJP: one forward kernel storing the
log-sum-exp per row, or cuDNN's forward returning it (`FlashOptions.forward="cudnn"`: unpacked
rows without dropout, where cuDNN's forward is the faster one); with a bias, a dK/dV kernel
that stores every row's dS, and one kernel that reads them once for dQ and the bias gradient;
without a bias and not causal, up to 128 queries (T5's cross-attention), one kernel per row
and head for dQ, dK and dV; otherwise a dK/dV kernel and a dQ kernel). With `joint_dkv` the
backward writes dK and dV (with `joint_dq`, in self-attention with a bias, dQ too) into one
buffer and returns its slices (`joint_gradients`), so that the projections' backward can be
one GEMM over it (`flanjax.layers.stacked_projection`). Under a mesh it runs per shard through
`jax.shard_map`: batch over the mesh axes of "batch", heads
over those of "heads"; the bias gradient of batch-sharded rows is summed across shards by the
map's transpose.
`reference_attention` is the same maths in plain jnp (tests, and the dropout mask's definition).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from flanjax import dropout

Array = Any

_GOLDEN = dropout.GOLDEN
_hash32 = dropout.hash32


@dataclasses.dataclass(frozen=True)
class FlashOptions:
  """Static kernel options (hashable: part of the custom VJP's non-differentiable state)."""
  causal: bool = False
  dropout_rate: float = 0.0
  block_q: int = 64
  block_k: int = 64
  bwd_block_q: int = 64
  bwd_block_k: int = 64
  num_warps: int = 4
  num_stages: int = 3
  # Triton options of the dK/dV and dQ kernels (0: num_warps / num_stages).
  bwd_warps: int = 0
  bwd_stages: int = 0
  # bias_grad="inplace": the rows of a batch group run one after another, accumulating into the
  # group's float32 partial sum; groups run in parallel (0: ~2 programs per SM).
  bias_batch_groups: int = 0
  # How the dK/dV kernel produces the batch-1 bias gradient. "rows" (default): each row's dS
  # is stored ([batch, heads, q, k] in bf16 for bf16 compute, else float32) from a fully
  # parallel grid and summed over rows by XLA in float32: 2.44 vs 2.76 ms per T5-large encoder
  # layer (call 24), checked on the GPU. "inplace": float32 sums over the rows of a batch group
  # accumulated in place ([groups, heads, q, k]: far less memory for long rows); checked in the
  # interpreter, timed on the GPU (calls 15-20) but its accumulation over several rows has not
  # been checked against the reference there.
  bias_grad: str = "rows"
  # With per-row dS stored (bias_grad="rows" and a bias): dQ = dS K over the stored dS (the
  # same bf16 dS the dQ kernel would form) instead of the dQ kernel, which recomputes S
  # (reading the bias again) and dP to get it: 3 of the backward's 7 block matmuls. False runs
  # the dQ kernel (A/B runs).
  dq_from_rows: bool = True
  # How dQ and the bias gradient read the stored dS rows (with dq_from_rows). "kernel"
  # (default since call 68): one Pallas kernel reads each dS element once for both (programs
  # row groups x heads x query blocks of `rows_block_q`; each program sums its rows' dS in
  # float32 registers, `rows_block_k` keys per dot; `rows_groups` partial sums, 0: ~2 programs
  # per SM, summed by XLA; Triton's `rows_warps` and `rows_stages`). "xla": an XLA reduction
  # over the rows and an XLA batched GEMM, two reads of [b, h, q, k] (also what rows of more
  # than ROWS_KERNEL_MAX_KEYS keys take).
  rows_reader: str = "kernel"
  rows_block_q: int = 64
  rows_block_k: int = 64
  rows_groups: int = 0
  rows_warps: int = 8
  rows_stages: int = 2
  # The launch order of the (rows, heads, blocks) kernels: block index first (default), so
  # that the programs of one (row, head) start together and share its q / dO (dK/dV kernel)
  # or k / v (forward and dQ kernels) in L2. False: the row index first (before session 15;
  # A/B runs), where the dK/dV kernel re-read q and dO from HBM once per key block.
  blocks_first: bool = True
  # dK and dV written into one [b, k, 2, h, d] buffer (the backward returns its slices), so that
  # a projection that stacks their cotangents (`flanjax.layers.stacked_projection`) runs one
  # input-gradient GEMM over it with no copy: XLA drops a stack of a buffer's own slices.
  # `joint_dq`: where q and k have one shape and the dS-rows reader writes dQ, dQ joins them in
  # one [b, s, 3, h, d] buffer (for self-attention: q, k and v projected from one input).
  # `joint_gradients` says which apply. Off by default: a caller that uses the gradients apart
  # would copy the slices; the model's attention turns them on (`layers.kernel_options`).
  joint_dkv: bool = False
  joint_dq: bool = False
  # Without a bias, causal mask or more than FUSED_MAX_QUERIES queries (T5's cross-attention):
  # one backward kernel per (row, head) holding every query, which walks the key blocks once
  # for dK, dV and dQ (5 block matmuls per block) instead of the dK/dV kernel and the dQ
  # kernel (7: the dQ kernel recomputes S and dP). False: the two kernels (A/B runs).
  fused_backward: bool = True
  fused_warps: int = 8
  # "pallas": the forward kernel above. "cudnn": cuDNN's fused forward (faster at T5's encoder
  # shapes) returning the float32 log-sum-exp that this file's backward kernels read; rows
  # without segment ids and without dropout only.
  forward: str = "pallas"
  interpret: bool = False  # run the kernels in Pallas' interpreter (CPU tests)


def _row_hash(seed: Array, b: Array, h: Array, num_heads, q_idx: Array) -> Array:
  """Per (row b, head h, query q) stream: uint32 [len(q_idx)]."""
  bh = (b * num_heads + h).astype(jnp.uint32)
  base = _hash32(seed.astype(jnp.uint32) ^ _hash32(bh * jnp.uint32(_GOLDEN)))
  return _hash32(base ^ q_idx.astype(jnp.uint32))


def _keep(row_hash: Array, k_idx: Array, rate: float) -> Array:
  """Dropout keep mask [q, k] from row hashes [q] and key indices [k]: P(keep) = 1 - rate.

  The key index is spread by the golden-ratio multiply before the XOR (one multiply per key,
  not per score): with `row_hash + k` two rows whose hashes differ by less than k_len would
  get shifted copies of one mask."""
  k_mix = k_idx.astype(jnp.uint32) * jnp.uint32(_GOLDEN)  # [k]
  x = _hash32(row_hash[:, None] ^ k_mix[None, :])
  return (x >> 8).astype(jnp.int32) >= dropout.threshold(rate)  # 24 bits: signed compare is safe


def _kernel_rows(seed_ref, b, h, num_heads: int, q_idx):
  """Row hashes from the kernels' seed operand: [seed], or under shard_map [seed, first row,
  first head, heads in all] so that a shard draws the mask of its global rows and heads."""
  if seed_ref.shape[0] == 1:
    return _row_hash(seed_ref[0], b, h, num_heads, q_idx)
  offset = lambda i: seed_ref[i].astype(jnp.int32)  # noqa: E731
  return _row_hash(seed_ref[0], b + offset(1), h + offset(2), offset(3), q_idx)


def dropout_keep_mask(seed: Array, batch: int, num_heads: int, q_len: int, k_len: int,
                      rate: float) -> Array:
  """The kernel's dropout mask as an array: bool [batch, heads, q_len, k_len]."""
  q_idx = jnp.arange(q_len, dtype=jnp.int32)
  k_idx = jnp.arange(k_len, dtype=jnp.int32)

  def one(b, h):
    return _keep(_row_hash(seed, b, h, num_heads, q_idx), k_idx, rate)
  bs = jnp.arange(batch, dtype=jnp.int32)
  hs = jnp.arange(num_heads, dtype=jnp.int32)
  return jax.vmap(lambda b: jax.vmap(lambda h: one(b, h))(hs))(bs)


def _visible(opts: FlashOptions, q_idx, k_idx, q_seg, k_seg, kv_len=None) -> Array | None:
  """bool [q, k]: which keys each query may see (None: all)."""
  mask = None
  if q_seg is not None:
    mask = q_seg[:, None] == k_seg[None, :]
  if kv_len is not None:  # right padding: keys from kv_len on are hidden
    real = jnp.broadcast_to((k_idx < kv_len)[None, :], (q_idx.shape[0], k_idx.shape[0]))
    mask = real if mask is None else jnp.logical_and(mask, real)
  if opts.causal:
    causal = q_idx[:, None] >= k_idx[None, :]
    mask = causal if mask is None else jnp.logical_and(mask, causal)
  return mask


def _dot(a, b, trans_a=False, trans_b=False):
  """2-D matmul with a float32 result (tensor cores for 16-bit operands)."""
  dims = (((0 if trans_a else 1,), (1 if trans_b else 0,)), ((), ()))
  return jax.lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)


def _scores(q, k, bias_blk, mask):
  """s = q k^T (+ bias), masked keys at -inf: float32 [bq, bk]."""
  s = _dot(q, k, trans_b=True)
  if bias_blk is not None:
    s = s + bias_blk.astype(jnp.float32)
  if mask is not None:
    s = jnp.where(mask, s, -jnp.inf)
  return s


def _recompute(q, k, v, do, bias_blk, mask, lse):
  """The backward pass's p = exp(s - lse) (masked: 0) and dp = do v^T, [bq, bk] each."""
  s = _scores(q, k, bias_blk, mask)
  return jnp.exp(s - lse[:, None]), _dot(do, v, trans_b=True)


def _drop(opts: FlashOptions, rows, k_idx, p, dp):
  """(p with dropout, dp with dropout) of a [q, k] block: the kept entries scaled by
  1/(1 - rate), the dropped ones zero; unchanged without dropout (`rows` None)."""
  if rows is None:
    return p, dp
  keep = _keep(rows, k_idx, opts.dropout_rate)
  scale = 1.0 / (1.0 - opts.dropout_rate)
  return jnp.where(keep, p * scale, 0.0), jnp.where(keep, dp * scale, 0.0)


def _query_rows(q_ref, do_ref, lse_ref, delta_ref, qseg_ref, kvlen_ref, seed_ref, b, h, qs,
                q_idx, num_heads: int):
  """What a backward program reads once for its queries `qs` of row b, head h: q, do [n, d],
  lse, delta [n], segment ids [n] (or None), the row's kv length (or None) and the dropout row
  hashes (or None)."""
  return (q_ref[b, qs, h, :], do_ref[b, qs, h, :], lse_ref[b, h, qs], delta_ref[b, h, qs],
          None if qseg_ref is None else qseg_ref[b, qs],
          None if kvlen_ref is None else kvlen_ref[b],
          None if seed_ref is None else _kernel_rows(seed_ref, b, h, num_heads, q_idx))


def _block_runs(q_seg, k_seg, live):
  """Whether a backward program visits a block (None: always): its segment ranges meet and,
  with kv lengths, the key block starts before the row's last real key (`live`)."""
  meet = None if q_seg is None else _segments_meet(q_seg, k_seg)
  if live is not None:
    meet = live if meet is None else jnp.logical_and(meet, live)
  return meet


def _segments_meet(q_seg, k_seg) -> Array:
  """False when no query segment id of the block can equal a key's (the block is all masked)."""
  return jnp.logical_and(jnp.min(q_seg) <= jnp.max(k_seg), jnp.min(k_seg) <= jnp.max(q_seg))


def _maybe(pred, fn, carry, on_skip=None):
  """fn(carry) where pred, else carry (skips fully masked blocks; `on_skip()` runs instead)."""
  if pred is None:
    return fn(carry)

  def skip(c):
    if on_skip is not None:
      on_skip()
    return c
  return jax.lax.cond(pred, fn, skip, carry)


# --------------------------------------------------------------------------- forward


def _fwd_kernel(q_ref, k_ref, v_ref, bias_ref, qseg_ref, kseg_ref, kvlen_ref, seed_ref, o_ref,
                lse_ref, *, opts: FlashOptions, num_heads: int):
  b, h, i = _program(opts)
  bq, bk = opts.block_q, opts.block_k
  k_len = k_ref.shape[1]
  qs = pl.ds(i * bq, bq)
  q = q_ref[b, qs, h, :]  # [bq, d]
  q_idx = i * bq + jax.lax.broadcasted_iota(jnp.int32, (bq,), 0)
  q_seg = None if qseg_ref is None else qseg_ref[b, qs]  # [bq]
  kv_len = None if kvlen_ref is None else kvlen_ref[b]
  rows = None if seed_ref is None else _kernel_rows(seed_ref, b, h, num_heads, q_idx)

  def body(j, carry):
    ks = pl.ds(j * bk, bk)
    k_seg = None if kseg_ref is None else kseg_ref[b, ks]

    def update(carry):
      acc, m, l = carry
      k_idx = j * bk + jax.lax.broadcasted_iota(jnp.int32, (bk,), 0)
      bias_blk = None if bias_ref is None else bias_ref[h, qs, ks]
      s = _scores(q, k_ref[b, ks, h, :], bias_blk,
                  _visible(opts, q_idx, k_idx, q_seg, k_seg, kv_len))
      m_new = jnp.maximum(m, jnp.max(s, axis=1))
      m_use = jnp.where(m_new == -jnp.inf, 0.0, m_new)  # all masked so far: keep exp() finite
      p = jnp.exp(s - m_use[:, None])  # [bq, bk]
      corr = jnp.exp(m - m_use)
      l = l * corr + jnp.sum(p, axis=1)
      if rows is not None:
        p = jnp.where(_keep(rows, k_idx, opts.dropout_rate), p, 0.0)
      v = v_ref[b, ks, h, :]
      acc = acc * corr[:, None] + _dot(p.astype(v.dtype), v)
      return acc, m_new, l

    return _maybe(None if q_seg is None else _segments_meet(q_seg, k_seg), update, carry)

  d = q_ref.shape[-1]
  carry = (jnp.zeros((bq, d), jnp.float32), jnp.full((bq,), -jnp.inf, jnp.float32),
           jnp.zeros((bq,), jnp.float32))
  upper = _key_blocks(opts, k_len // bk, i, bq, bk, kv_len)
  acc, m, l = jax.lax.fori_loop(0, upper, body, carry)
  seen = l > 0
  scale = 1.0 / (1.0 - opts.dropout_rate)
  o = acc * (scale / jnp.where(seen, l, 1.0))[:, None]
  o_ref[b, qs, h, :] = jnp.where(seen[:, None], o, 0.0).astype(o_ref.dtype)
  lse_ref[b, h, qs] = jnp.where(seen, m + jnp.log(jnp.where(seen, l, 1.0)), 0.0)


def _key_blocks(opts: FlashOptions, blocks: int, i, bq: int, bk: int, kv_len):
  """How many key blocks query block i visits: all, up to the causal diagonal, and none past
  the row's last real key (a loop bound, not a per-block branch)."""
  upper = blocks
  if opts.causal:
    upper = jnp.minimum(upper, ((i + 1) * bq + bk - 1) // bk)
  if kv_len is not None:
    upper = jnp.minimum(upper, (kv_len + bk - 1) // bk)
  return upper


def _compiler_params(opts: FlashOptions, num_warps: int | None = None,
                     num_stages: int | None = None):
  """Triton's launch options (default: the attention kernels' `num_warps` / `num_stages`)."""
  if opts.interpret:
    return None
  from jax.experimental.pallas import triton as plgpu
  return plgpu.CompilerParams(num_warps=num_warps or opts.num_warps,
                              num_stages=num_stages or opts.num_stages)


def _grid(opts: FlashOptions, rows: int, heads: int, blocks: int) -> tuple[int, int, int]:
  """The launch grid of a (rows, heads, blocks) kernel. CUDA starts programs in grid-x order:
  with the block index in x (`blocks_first`), the programs of one (row, head) run together and
  share its q and dO (dK/dV kernel) or k and v (forward, dQ kernel) in L2. With the row index
  in x, base b256's dK/dV kernel re-read q and dO from HBM once per key block: 5.7 GB of DRAM
  traffic where ~2.8 GB are needed (ncu, call 106). (Pallas' Triton lowering maps the grid to
  CUDA's x, y, z in order and folds dimensions past CUDA's limits into x, block index fastest.)"""
  return (blocks, heads, rows) if opts.blocks_first else (rows, heads, blocks)


def _program(opts: FlashOptions):
  """(row or row group, head, block) of this program under `_grid`."""
  x, h, z = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  return (z, h, x) if opts.blocks_first else (x, h, z)


def _forward(q, k, v, bias, q_seg, k_seg, kv_len, seed, opts: FlashOptions):
  batch, q_len, heads, d = q.shape
  kernel = functools.partial(_fwd_kernel, opts=opts, num_heads=heads)
  out_shape = [jax.ShapeDtypeStruct(q.shape, q.dtype),
               jax.ShapeDtypeStruct((batch, heads, q_len), jnp.float32)]
  return pl.pallas_call(
      kernel, grid=_grid(opts, batch, heads, q_len // opts.block_q), out_shape=out_shape,
      compiler_params=_compiler_params(opts), interpret=opts.interpret,
      name="flanjax_flash_fwd")(q, k, v, _kernel_bias(bias, q), q_seg, k_seg, kv_len, seed)


def _kernel_bias(bias, q):
  """The bias as the kernels read it: in the compute dtype, as cuDNN does (half the bytes of
  float32: -0.3 ms of 2.4 per T5-large encoder layer, call 24). Float32 inputs stay exact."""
  return None if bias is None else bias.astype(q.dtype)


# --------------------------------------------------------------------------- backward


def _dkv_kernel(q_ref, k_ref, v_ref, bias_ref, qseg_ref, kseg_ref, kvlen_ref, seed_ref, do_ref,
                lse_ref, delta_ref, dbias_in_ref, dk_ref, dv_ref, dbias_ref, *,
                opts: FlashOptions, num_heads: int, rows_per_program: int):
  """Programs (batch groups, heads, key blocks), as `_program` reads them (launched in `_grid`
  order): dK, dV of each row of the group, and the bias gradient: per row (`bias_grad="rows"`,
  groups of one row; every block written once, zeros where skipped) or summed in place over
  the rows of the group, which then run one after another ("inplace"; `dbias_in_ref` is the
  aliased zeros)."""
  del dbias_in_ref
  rows_mode = opts.bias_grad == "rows"
  g, h, j = _program(opts)
  bq, bk = opts.bwd_block_q, opts.bwd_block_k
  q_len = q_ref.shape[1]
  ks = pl.ds(j * bk, bk)
  k_idx = j * bk + jax.lax.broadcasted_iota(jnp.int32, (bk,), 0)
  d = q_ref.shape[-1]
  # Causal: query blocks wholly before this key block see none of it (clamped: k_len > q_len).
  lower = jnp.minimum((j * bk) // bq, q_len // bq) if opts.causal else None
  zero_fill = dbias_ref is not None and rows_mode

  def zero_block(i):
    dbias_ref[g, h, pl.ds(i * bq, bq), ks] = jnp.zeros((bq, bk), dbias_ref.dtype)

  def one_row(n, _):
    b = g * rows_per_program + n
    k = k_ref[b, ks, h, :]  # [bk, d]
    v = v_ref[b, ks, h, :]
    k_seg = None if kseg_ref is None else kseg_ref[b, ks]
    kv_len = None if kvlen_ref is None else kvlen_ref[b]
    # A key block wholly past the row's last real key: every query block skips it.
    live = None if kv_len is None else j * bk < kv_len

    def body(i, carry):
      qs = pl.ds(i * bq, bq)
      q_seg = None if qseg_ref is None else qseg_ref[b, qs]
      meet = _block_runs(q_seg, k_seg, live)

      def update(carry):
        dk, dv = carry
        q_idx = i * bq + jax.lax.broadcasted_iota(jnp.int32, (bq,), 0)
        q = q_ref[b, qs, h, :]
        do = do_ref[b, qs, h, :]
        bias_blk = None if bias_ref is None else bias_ref[h, qs, ks]
        p, dp = _recompute(q, k, v, do, bias_blk,
                           _visible(opts, q_idx, k_idx, q_seg, k_seg, kv_len), lse_ref[b, h, qs])
        rows = None if seed_ref is None else _kernel_rows(seed_ref, b, h, num_heads, q_idx)
        p_drop, dp = _drop(opts, rows, k_idx, p, dp)
        dv = dv + _dot(p_drop.astype(do.dtype), do, trans_a=True)
        ds = p * (dp - delta_ref[b, h, qs][:, None])
        dk = dk + _dot(ds.astype(q.dtype), q, trans_a=True)
        if dbias_ref is not None:
          if rows_mode:
            dbias_ref[g, h, qs, ks] = ds.astype(dbias_ref.dtype)
          else:
            _barrier(opts)  # this block's update for an earlier row is visible to every thread
            dbias_ref[g, h, qs, ks] = dbias_ref[g, h, qs, ks] + ds
        return dk, dv

      return _maybe(meet, update, carry,
                    on_skip=functools.partial(zero_block, i) if zero_fill else None)

    zeros = jnp.zeros((bk, d), jnp.float32)
    if zero_fill and lower is not None:  # causal: query blocks wholly before this key block
      jax.lax.fori_loop(0, lower, lambda i, c: (zero_block(i), c)[1], 0)
    dk, dv = jax.lax.fori_loop(0 if lower is None else lower, q_len // bq, body, (zeros, zeros))
    _store_kv(dk_ref, dv_ref, b, ks, h, dk, dv)
    return 0

  jax.lax.fori_loop(0, rows_per_program, one_row, 0)


def _store_kv(dk_ref, dv_ref, b, ks, h, dk, dv):
  """Writes a key block's dK, dV [bk, d]: into two buffers, or into the last two slots of one
  [b, k, 2 or 3, h, d] (`joint_gradients`: `dv_ref` is None)."""
  if dv_ref is None:
    first = dk_ref.shape[2] - 2  # (slot 0 of three is dQ's)
    dk_ref[b, ks, first, h, :] = dk.astype(dk_ref.dtype)
    dk_ref[b, ks, first + 1, h, :] = dv.astype(dk_ref.dtype)
  else:
    dk_ref[b, ks, h, :] = dk.astype(dk_ref.dtype)
    dv_ref[b, ks, h, :] = dv.astype(dv_ref.dtype)


def _reads_rows(opts: FlashOptions, has_bias: bool, k_len: int) -> bool:
  """Whether the backward stores dS rows and reads them with the reader kernel (dQ and the
  bias gradient in one read)."""
  return (has_bias and opts.bias_grad == "rows" and opts.dq_from_rows
          and opts.rows_reader == "kernel" and k_len <= ROWS_KERNEL_MAX_KEYS)


def joint_gradients(q_shape, k_shape, has_bias: bool, opts: FlashOptions) -> str:
  """Which input gradients the backward returns as slices of one buffer: "qkv" ([b, s, 3, h,
  d]: `joint_dq`, q and k of one shape, a bias, and dQ from the rows reader: `bias_grad=
  "rows"`, `dq_from_rows`, `rows_reader="kernel"`, at most ROWS_KERNEL_MAX_KEYS keys), "kv"
  ([b, k, 2, h, d]: `joint_dkv`) or "" (separate buffers). A projection stacking exactly those
  cotangents costs no copy."""
  if not opts.joint_dkv:
    return ""
  if opts.joint_dq and tuple(q_shape) == tuple(k_shape) and _reads_rows(opts, has_bias,
                                                                        k_shape[1]):
    return "qkv"
  return "kv"


def _kv_grad_shapes(joint: str, k) -> list:
  """The dK/dV outputs: one [b, k, 2 or 3, h, d] buffer (`joint_gradients`) or two [b, k, h,
  d]."""
  if joint:
    b, k_len, heads, d = k.shape
    return [jax.ShapeDtypeStruct((b, k_len, len(joint), heads, d), k.dtype)]
  return [jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(k.shape, k.dtype)]


def _split_kv_grads(joint: str, outs):
  """(dk, dv, the outputs after them) from a kernel's outputs (`_kv_grad_shapes`)."""
  if joint:
    first = len(joint) - 2
    return outs[0][:, :, first], outs[0][:, :, first + 1], outs[1:]
  return outs[0], outs[1], outs[2:]


def _barrier(opts: FlashOptions):
  """A CTA barrier: global stores of every thread before it are visible to every thread after
  it (the bias-gradient block is read and written by differently laid-out threads)."""
  if not opts.interpret:
    from jax.experimental.pallas import triton as plgpu
    plgpu.debug_barrier()


def _dq_kernel(q_ref, k_ref, v_ref, bias_ref, qseg_ref, kseg_ref, kvlen_ref, seed_ref, do_ref,
               lse_ref, delta_ref, dq_ref, *, opts: FlashOptions, num_heads: int):
  b, h, i = _program(opts)
  bq, bk = opts.bwd_block_q, opts.bwd_block_k
  k_len = k_ref.shape[1]
  qs = pl.ds(i * bq, bq)
  q_idx = i * bq + jax.lax.broadcasted_iota(jnp.int32, (bq,), 0)
  q, do, lse, delta, q_seg, kv_len, rows = _query_rows(
      q_ref, do_ref, lse_ref, delta_ref, qseg_ref, kvlen_ref, seed_ref, b, h, qs, q_idx,
      num_heads)

  def body(j, dq):
    ks = pl.ds(j * bk, bk)
    k_seg = None if kseg_ref is None else kseg_ref[b, ks]

    def update(dq):
      k_idx = j * bk + jax.lax.broadcasted_iota(jnp.int32, (bk,), 0)
      k = k_ref[b, ks, h, :]
      v = v_ref[b, ks, h, :]
      bias_blk = None if bias_ref is None else bias_ref[h, qs, ks]
      p, dp = _recompute(q, k, v, do, bias_blk,
                         _visible(opts, q_idx, k_idx, q_seg, k_seg, kv_len), lse)
      if rows is not None:  # (only dp: `_drop`'s dropped p is not needed here)
        scale = 1.0 / (1.0 - opts.dropout_rate)
        dp = jnp.where(_keep(rows, k_idx, opts.dropout_rate), dp * scale, 0.0)
      ds = p * (dp - delta[:, None])
      return dq + _dot(ds.astype(k.dtype), k)

    return _maybe(None if q_seg is None else _segments_meet(q_seg, k_seg), update, dq)

  upper = _key_blocks(opts, k_len // bk, i, bq, bk, kv_len)
  dq = jax.lax.fori_loop(0, upper, body, jnp.zeros((bq, q_ref.shape[-1]), jnp.float32))
  dq_ref[b, qs, h, :] = dq.astype(dq_ref.dtype)


# The fused backward holds every query of a row (Q, dO, the dQ sum and a block of scores).
FUSED_MAX_QUERIES = 128


def _fused_kernel(q_ref, k_ref, v_ref, qseg_ref, kseg_ref, kvlen_ref, seed_ref, do_ref, lse_ref,
                  delta_ref, dq_ref, dk_ref, dv_ref, *, opts: FlashOptions, num_heads: int):
  """Grid (batch, heads), no bias, not causal: every query of the row at once; for each key
  block S and dP once, then dV, dK (written per block, zeros where the block is skipped) and
  the running dQ (written at the end). With `joint_gradients` "kv", dk_ref is the [b, k, 2, h,
  d] buffer and dv_ref None."""
  b, h = pl.program_id(0), pl.program_id(1)
  bk = opts.bwd_block_k
  q_len, d = q_ref.shape[1], q_ref.shape[-1]
  k_len = k_ref.shape[1]
  q_idx = jax.lax.broadcasted_iota(jnp.int32, (q_len,), 0)
  q, do, lse, delta, q_seg, kv_len, rows = _query_rows(  # q, do [q_len, d]
      q_ref, do_ref, lse_ref, delta_ref, qseg_ref, kvlen_ref, seed_ref, b, h, slice(None),
      q_idx, num_heads)

  def body(j, dq):
    ks = pl.ds(j * bk, bk)
    k_seg = None if kseg_ref is None else kseg_ref[b, ks]
    # a key block wholly past the row's last real key is skipped
    meet = _block_runs(q_seg, k_seg, None if kv_len is None else j * bk < kv_len)

    def update(dq):
      k_idx = j * bk + jax.lax.broadcasted_iota(jnp.int32, (bk,), 0)
      k = k_ref[b, ks, h, :]  # [bk, d]
      v = v_ref[b, ks, h, :]
      p, dp = _recompute(q, k, v, do, None,
                         _visible(opts, q_idx, k_idx, q_seg, k_seg, kv_len), lse)
      p_drop, dp = _drop(opts, rows, k_idx, p, dp)
      dv = _dot(p_drop.astype(do.dtype), do, trans_a=True)
      ds = (p * (dp - delta[:, None])).astype(q.dtype)  # [q_len, bk]
      _store_kv(dk_ref, dv_ref, b, ks, h, _dot(ds, q, trans_a=True), dv)
      return dq + _dot(ds, k)

    def skip():
      zeros = jnp.zeros((bk, d), jnp.float32)
      _store_kv(dk_ref, dv_ref, b, ks, h, zeros, zeros)

    return _maybe(meet, update, dq, on_skip=skip)

  dq = jax.lax.fori_loop(0, k_len // bk, body, jnp.zeros((q_len, d), jnp.float32))
  dq_ref[b, :, h, :] = dq.astype(dq_ref.dtype)


def _fused_backward(opts: FlashOptions, args):
  q, k, v, _, q_seg, k_seg, kv_len, seed, do, lse, delta = args
  batch, _, heads, _ = q.shape

  joint = joint_gradients(q.shape, k.shape, False, opts)  # ("kv": no bias, no rows reader)

  def kernel(*refs):
    if joint:
      refs = refs + (None,)
    return _fused_kernel(*refs, opts=opts, num_heads=heads)

  outs = pl.pallas_call(
      kernel, grid=(batch, heads),
      out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype)] + _kv_grad_shapes(joint, k),
      compiler_params=_compiler_params(opts, opts.fused_warps), interpret=opts.interpret,
      name="flanjax_flash_bwd")(q, k, v, q_seg, k_seg, kv_len, seed, do, lse, delta)
  dk, dv, _ = _split_kv_grads(joint, outs[1:])
  return outs[0], dk, dv


# The rows reader keeps a `rows_block_q x k_len` float32 sum in registers: measured on H100s up
# to 512 keys (calls 67-68); longer rows take the XLA reader.
ROWS_KERNEL_MAX_KEYS = 512


def _rows_kernel(ds_ref, k_ref, dq_ref, dbias_ref, *, rows_per_program: int, bq: int,
                 bk: int, opts: FlashOptions):
  """Programs (row groups, heads, query blocks), as `_program` reads them (launched in `_grid`
  order): dQ = dS K of each row of the group, and the sum of the group's dS rows (float32, in
  registers: `bq x k_len` per program), reading each dS element once. dS is zero wherever it
  was masked or skipped, so no mask is needed here. A 5-D dq_ref is the [b, s, 3, h, d] buffer
  of `joint_gradients` "qkv": dQ goes into its slot 0."""
  g, h, i = _program(opts)
  k_len, d = k_ref.shape[1], k_ref.shape[-1]
  qs = pl.ds(i * bq, bq)
  chunks = [pl.ds(c * bk, bk) for c in range(k_len // bk)]

  def one_row(n, acc):
    b = g * rows_per_program + n
    dq = jnp.zeros((bq, d), jnp.float32)
    new = []
    for c, ks in enumerate(chunks):
      ds = ds_ref[b, h, qs, ks]  # [bq, bk]
      dq = dq + _dot(ds.astype(k_ref.dtype), k_ref[b, ks, h, :])
      new.append(acc[c] + ds.astype(jnp.float32))
    if len(dq_ref.shape) == 5:
      dq_ref[b, qs, 0, h, :] = dq.astype(dq_ref.dtype)
    else:
      dq_ref[b, qs, h, :] = dq.astype(dq_ref.dtype)
    return tuple(new)

  acc = tuple(jnp.zeros((bq, bk), jnp.float32) for _ in chunks)
  acc = jax.lax.fori_loop(0, rows_per_program, one_row, acc)
  for c, ks in enumerate(chunks):
    dbias_ref[g, h, qs, ks] = acc[c]


def _fit(n: int, cap: int) -> int:
  """The largest power of two <= cap that divides n (n: a multiple of 16)."""
  blk = cap
  while n % blk:
    blk //= 2
  return blk


def _read_rows(opts: FlashOptions, ds, k, q_dtype, joint=None):
  """dQ [b, q, h, d] and the float32 bias gradient [h, q, k] from the stored dS rows
  [b, h, q, k] in one Pallas kernel (`rows_reader="kernel"`). With `joint`, the dK/dV
  kernel's [b, s, 3, h, d] buffer, dQ goes into its slot 0 (in place) and the whole buffer is
  returned in its stead."""
  batch, heads, q_len, k_len = ds.shape
  bq, bk = _fit(q_len, opts.rows_block_q), _fit(k_len, opts.rows_block_k)
  groups = _row_groups(opts.rows_groups, batch, heads * (q_len // bq))
  kernel = functools.partial(_rows_kernel, rows_per_program=batch // groups, bq=bq, bk=bk,
                             opts=opts)
  dq_shape = jax.ShapeDtypeStruct((batch, q_len, heads, k.shape[-1]), q_dtype)
  args, aliases = (ds, k), {}
  if joint is not None:  # (the aliased input's ref is not read: the output's is the same)
    dq_shape = jax.ShapeDtypeStruct(joint.shape, joint.dtype)
    args, aliases = (ds, k, joint), {2: 0}
    kernel = functools.partial(lambda ds_ref, k_ref, _, *outs, fn: fn(ds_ref, k_ref, *outs),
                               fn=kernel)
  dq, part = pl.pallas_call(
      kernel, grid=_grid(opts, groups, heads, q_len // bq),
      out_shape=[dq_shape, jax.ShapeDtypeStruct((groups, heads, q_len, k_len), jnp.float32)],
      input_output_aliases=aliases,
      compiler_params=_compiler_params(opts, opts.rows_warps, opts.rows_stages),
      interpret=opts.interpret, name="flanjax_flash_rows")(*args)
  return dq, (part[0] if groups == 1 else jnp.sum(part, axis=0))


def _row_groups(requested: int, batch: int, programs_per_group: int) -> int:
  """How many groups of rows (parallel partial bias-gradient sums) a kernel launches: the
  largest divisor of the batch up to `requested` (0: enough groups for ~2 programs per SM)."""
  want = requested or max(1, -(-264 // programs_per_group))
  return max(c for c in range(1, batch + 1) if batch % c == 0 and c <= want)


def _backward(opts: FlashOptions, res, do):
  q, k, v, bias, q_seg, k_seg, kv_len, seed, out, lse = res
  batch, q_len, heads, d = q.shape
  k_len = k.shape[1]
  bq, bk = opts.bwd_block_q, opts.bwd_block_k
  delta = jnp.einsum("bqhd,bqhd->bhq", out.astype(jnp.float32), do.astype(jnp.float32))
  args = (q, k, v, _kernel_bias(bias, q), q_seg, k_seg, kv_len, seed, do, lse, delta)
  if (bias is None and not opts.causal and opts.fused_backward
      and q_len <= FUSED_MAX_QUERIES):
    dq, dk, dv = _fused_backward(opts, args)
    return dq, dk, dv, None, None, None, None, None

  inplace = bias is not None and opts.bias_grad == "inplace"
  groups, rows_per_program, dbias0 = batch, 1, None
  joint = joint_gradients(q.shape, k.shape, bias is not None, opts)
  out_shape = _kv_grad_shapes(joint, k)
  if inplace:
    groups = _row_groups(opts.bias_batch_groups, batch, heads * (k_len // bk))
    rows_per_program = batch // groups
    dbias0 = jnp.zeros((groups, heads, q_len, k_len), jnp.float32)
    out_shape.append(jax.ShapeDtypeStruct(dbias0.shape, jnp.float32))
  elif bias is not None:  # dS of every row, in the compute dtype
    rows_dtype = jnp.bfloat16 if q.dtype == jnp.bfloat16 else jnp.float32  # (fp16: subnormals)
    out_shape.append(jax.ShapeDtypeStruct((batch, heads, q_len, k_len), rows_dtype))

  def dkv_kernel(*refs):
    ins, outs = refs[:11], refs[11:]
    dbias_in = None
    if inplace:
      dbias_in, outs = outs[0], outs[1:]
    if joint:
      outs = (outs[0], None) + outs[1:]
    if bias is None:
      outs = outs + (None,)
    return _dkv_kernel(*ins, dbias_in, *outs, opts=opts, num_heads=heads,
                       rows_per_program=rows_per_program)

  outs = pl.pallas_call(
      dkv_kernel, grid=_grid(opts, groups, heads, k_len // bk), out_shape=out_shape,
      input_output_aliases=({len(jax.tree.leaves(args)): len(out_shape) - 1} if inplace
                            else {}),  # (the in-place sums: the last output)
      compiler_params=_compiler_params(opts, opts.bwd_warps, opts.bwd_stages),
      interpret=opts.interpret,
      name="flanjax_flash_dkv")(*args, *((dbias0,) if inplace else ()))
  dk, dv, rest = _split_kv_grads(joint, outs)
  dbias = None  # [h, q, k]: summed over the groups or rows in float32
  if bias is not None:
    if _reads_rows(opts, True, k_len):  # one read of the rows for dQ and the sum
      if joint == "qkv":  # dQ into slot 0 of the dK/dV kernel's buffer
        grads, dbias = _read_rows(opts, rest[0], k, q.dtype, joint=outs[0])
        dq, (dk, dv, _) = grads[:, :, 0], _split_kv_grads(joint, [grads])
      else:
        dq, dbias = _read_rows(opts, rest[0], k, q.dtype)
      return dq, dk, dv, dbias.astype(bias.dtype), None, None, None, None
    dbias = jnp.sum(rest[0].astype(jnp.float32), axis=0).astype(bias.dtype)
    if not inplace and opts.dq_from_rows:
      # dS [b, h, q, k] of every row is stored (zeros where masked or skipped): dQ = dS K.
      ds = rest[0].astype(k.dtype)  # (a no-op for bf16 and float32 compute)
      dq = jnp.einsum("bhqk,bkhd->bqhd", ds, k, preferred_element_type=jnp.float32)
      return dq.astype(q.dtype), dk, dv, dbias, None, None, None, None

  dq = pl.pallas_call(
      functools.partial(_dq_kernel, opts=opts, num_heads=heads),
      grid=_grid(opts, batch, heads, q_len // bq),
      out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
      compiler_params=_compiler_params(opts, opts.bwd_warps, opts.bwd_stages),
      interpret=opts.interpret,
      name="flanjax_flash_dq")(*args)
  return dq, dk, dv, dbias, None, None, None, None


def cudnn_forward_available() -> bool:
  """Whether this JAX's cuDNN module returns the forward's float32 statistics
  (`FlashOptions.forward="cudnn"`; a private module: `auto` falls back to cuDNN alone
  without it)."""
  try:
    from jax._src.cudnn import fused_attention_stablehlo as cudnn
  except ImportError:
    return False
  fn = getattr(cudnn, "dot_product_attention", None)
  return fn is not None and "return_residual" in inspect.signature(fn).parameters


def _cudnn_forward(q, k, v, bias, kv_len, opts: FlashOptions):
  """cuDNN's fused forward: o [b, q, h, d] and the float32 log-sum-exp [b, h, q] (natural log,
  as `_forward`'s) that the backward kernels read. Through JAX's cuDNN module, whose
  `return_residual` keeps the statistics in float32 (`jax.nn.dot_product_attention` casts
  them to q's dtype)."""
  from jax._src.cudnn import fused_attention_stablehlo as cudnn
  batch, q_len = q.shape[:2]
  lengths = {}
  if kv_len is not None:
    lengths = dict(q_seqlen=jnp.full((batch,), q_len, jnp.int32), kv_seqlen=kv_len)
  kinds = {(False, False): cudnn.MaskType.NO_MASK, (True, False): cudnn.MaskType.PADDING,
           (False, True): cudnn.MaskType.CAUSAL, (True, True): cudnn.MaskType.PADDING_CAUSAL}
  out, lse = cudnn.dot_product_attention(
      q, k, v, None if bias is None else _kernel_bias(bias, q)[None], scale=1.0,
      mask_type=kinds[(kv_len is not None, opts.causal)], return_residual=True, **lengths)
  return out, lse.astype(jnp.float32)


def _any_forward(q, k, v, bias, q_seg, k_seg, kv_len, seed, opts: FlashOptions):
  if opts.forward == "cudnn":
    return _cudnn_forward(q, k, v, bias, kv_len, opts)
  return _forward(q, k, v, bias, q_seg, k_seg, kv_len, seed, opts)


@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _flash(q, k, v, bias, q_seg, k_seg, kv_len, seed, opts: FlashOptions):
  return _any_forward(q, k, v, bias, q_seg, k_seg, kv_len, seed, opts)[0]


def _flash_fwd(q, k, v, bias, q_seg, k_seg, kv_len, seed, opts: FlashOptions):
  out, lse = _any_forward(q, k, v, bias, q_seg, k_seg, kv_len, seed, opts)
  return out, (q, k, v, bias, q_seg, k_seg, kv_len, seed, out, lse)


_flash.defvjp(_flash_fwd, _backward)


# --------------------------------------------------------------------------- public API


def check_supported(q_shape, k_shape, opts: FlashOptions) -> str | None:
  """Why the kernel cannot take these shapes (None: it can)."""
  _, q_len, _, d = q_shape
  k_len = k_shape[1]
  why = unsupported_reason(d, ())
  if why:
    return why
  for name in ("block_q", "block_k", "bwd_block_q", "bwd_block_k"):
    blk = getattr(opts, name)
    if blk < 16 or blk & (blk - 1):
      return f"FlashOptions.{name}={blk} is not a power of two >= 16 (Triton's tile shapes)"
  if opts.bias_grad not in ("rows", "inplace"):
    return f"FlashOptions.bias_grad={opts.bias_grad!r} is not 'rows' or 'inplace'"
  if opts.rows_reader not in ("xla", "kernel"):
    return f"FlashOptions.rows_reader={opts.rows_reader!r} is not 'xla' or 'kernel'"
  for name in ("rows_block_q", "rows_block_k"):  # caps: _read_rows fits them to the lengths
    blk = getattr(opts, name)
    if blk < 16 or blk & (blk - 1):
      return f"FlashOptions.{name}={blk} is not a power of two >= 16"
  for name, n, blocks in (("query length", q_len, (opts.block_q, opts.bwd_block_q)),
                          ("key length", k_len, (opts.block_k, opts.bwd_block_k))):
    for blk in blocks:
      if n % blk:
        return f"{name} {n} is not a multiple of the block size {blk}"
  if not 0.0 <= opts.dropout_rate < 1.0:
    return f"dropout_rate={opts.dropout_rate} is not in [0, 1)"
  if opts.forward not in ("pallas", "cudnn"):
    return f"FlashOptions.forward={opts.forward!r} is not 'pallas' or 'cudnn'"
  for name in ("num_warps", "num_stages", "fused_warps", "rows_warps", "rows_stages",
               "bwd_warps", "bwd_stages"):
    n = getattr(opts, name)
    fallback = name.startswith("bwd_")  # 0: num_warps / num_stages
    if n < 0 or (n == 0 and not fallback):
      return (f"FlashOptions.{name}={n} is not a positive count"
              + (" (or 0: num_warps / num_stages)" if fallback else ""))
  return None


def unsupported_reason(head_dim: int, lengths: tuple[int, ...]) -> str | None:
  """Why the kernel cannot serve a model with this head_dim and these sequence lengths."""
  if head_dim < 16 or head_dim & (head_dim - 1):
    return f"head_dim={head_dim} is not a power of two >= 16"
  for n in lengths:
    if n % 16:
      return f"sequence length {n} is not a multiple of 16"
  return None


def options_for(q_len: int, k_len: int, *, causal: bool, dropout_rate: float,
                interpret: bool = False) -> FlashOptions:
  """Block sizes for T5's lengths: the largest of 128/64/32/16 that divides each length."""
  def block(n, cap):
    for b in (128, 64, 32, 16):
      if b <= cap and n % b == 0:
        return b
    return 16
  # The dS-rows reader (calls 67-68 and 106, the reader alone): 64 queries, 8 warps, 2 stages;
  # for long rows 128-key chunks and one group (every row in one program: base b256 1.419 ms,
  # large b112 0.714, xl b48 0.639 against 1.460 / 0.729 / 0.672 with 64-key chunks in call 106,
  # a tie in call 111; 2-8 groups were not faster; XLA's reduction + GEMM 0.542 at large b64),
  # for short rows ~2 programs per SM (decoder self 0.060 ms, XLA 0.092).
  return FlashOptions(causal=causal, dropout_rate=dropout_rate,
                      block_q=block(q_len, 128), block_k=block(k_len, 64),
                      bwd_block_q=block(q_len, 64), bwd_block_k=block(k_len, 64),
                      rows_block_q=block(q_len, 64),
                      rows_block_k=block(k_len, 128 if k_len > 128 else 32),
                      rows_groups=1 if k_len > 128 else 0, rows_warps=8, rows_stages=2,
                      interpret=interpret)


def flash_attention(q: Array, k: Array, v: Array, bias: Array | None = None, *,
                    q_segment_ids: Array | None = None, kv_segment_ids: Array | None = None,
                    kv_lengths: Array | None = None, causal: bool = False,
                    dropout_rate: float = 0.0, dropout_rng: Array | None = None,
                    dropout_seed: Array | None = None, options: FlashOptions | None = None,
                    mesh_axes: tuple[Any, Any] | None = None) -> Array:
  """Fused attention, T5 convention (no scaling). Differentiable in q, k, v and bias.

  q [b, q, h, d], k/v [b, k, h, d]; bias [1, h, q, k] (float32, shared by all rows) or None;
  q_segment_ids [b, q] / kv_segment_ids [b, k] int32: a query sees keys of equal id (give both
  or neither); kv_lengths [b] int32 hides keys from that index on (right padding: cheaper than
  segment ids, as blocks past it are not visited); `causal` hides keys after the query. With
  `dropout_rate > 0` a uint32 scalar `dropout_seed`, or a `dropout_rng` key
  (`dropout.seed_from_key`), seeds the in-kernel mask (`dropout_keep_mask`).
  `mesh_axes=(batch_axes, head_axes)` runs the kernel per shard under the current mesh
  (`jax.set_mesh`). `options` gives block sizes and the like (default: `options_for` the
  lengths); its causal/dropout_rate fields are replaced by the arguments. Returns
  [b, q, h, d] in q's dtype.
  """
  b, q_len, heads, d = q.shape
  k_len = k.shape[1]
  if k.shape != v.shape or k.shape != (b, k_len, heads, d):
    raise ValueError(f"flash_attention: q {q.shape}, k {k.shape} and v {v.shape} must be "
                     "[batch, len, heads, head_dim] with equal batch, heads and head_dim (and "
                     "k, v of one shape).")
  if not q.dtype == k.dtype == v.dtype:
    raise ValueError(f"flash_attention: q, k and v must share one dtype, got {q.dtype}, "
                     f"{k.dtype} and {v.dtype}; cast them to the compute dtype.")
  if (q_segment_ids is None) != (kv_segment_ids is None):
    raise ValueError("flash_attention: give both q_segment_ids and kv_segment_ids, or neither.")
  if options is not None and options.forward == "cudnn":
    if q_segment_ids is not None:
      raise ValueError("flash_attention: FlashOptions.forward='cudnn' takes no segment ids "
                       "(unpacked rows: give kv_lengths); use forward='pallas' for packed "
                       "rows.")
    if q.dtype not in (jnp.bfloat16, jnp.float16) or d > 128:
      raise ValueError(f"flash_attention: FlashOptions.forward='cudnn' needs bf16/fp16 inputs "
                       f"and head_dim <= 128 (cuDNN's), got {q.dtype} and {d}; use "
                       "forward='pallas'.")
    if dropout_rate > 0 or options.interpret:
      raise ValueError("flash_attention: FlashOptions.forward='cudnn' takes no attention "
                       "dropout and needs a GPU (not the interpreter); use forward='pallas'.")
  if q_segment_ids is not None and (q_segment_ids.shape != (b, q_len)
                                    or kv_segment_ids.shape != (b, k_len)):
    raise ValueError(f"flash_attention: segment ids must be [batch, q] {(b, q_len)} and "
                     f"[batch, k] {(b, k_len)}, got {q_segment_ids.shape} and "
                     f"{kv_segment_ids.shape}.")
  if kv_lengths is not None and kv_lengths.shape != (b,):
    raise ValueError(f"flash_attention: kv_lengths must be [batch] = {(b,)}, got "
                     f"{kv_lengths.shape}.")
  if bias is not None and bias.shape != (1, heads, q_len, k_len):
    raise ValueError(f"flash_attention: bias must be [1, heads, q, k] = "
                     f"{(1, heads, q_len, k_len)} (one bias shared by every row), got "
                     f"{bias.shape}.")
  if options is None:
    options = options_for(q.shape[1], k.shape[1], causal=causal, dropout_rate=dropout_rate)
  options = dataclasses.replace(options, causal=causal, dropout_rate=dropout_rate)
  why = check_supported(q.shape, k.shape, options)
  if why:
    raise ValueError(f"flash_attention: {why}; use the einsum attention path for this shape.")
  seed = None
  if dropout_rate > 0:
    seed = _dropout_seed(dropout_rng, dropout_seed, "flash_attention")
  bias3 = None if bias is None else bias[0]  # [h, q, k]
  q_seg = None if q_segment_ids is None else q_segment_ids.astype(jnp.int32)
  k_seg = None if kv_segment_ids is None else kv_segment_ids.astype(jnp.int32)
  kv_len = None if kv_lengths is None else kv_lengths.astype(jnp.int32)

  def run(q, k, v, bias3, q_seg, k_seg, kv_len, seed, sharded=False):
    if sharded and seed is not None:
      # Shards hold other rows/heads under the same local indices: give the kernels the
      # shard's first global row and head, so the mask is the unsharded one (and the einsum
      # path's) whatever the mesh.
      batch_axes, head_axes = mesh_axes
      first_row = 0 if batch_axes is None else jax.lax.axis_index(batch_axes) * q.shape[0]
      first_head = 0 if head_axes is None else jax.lax.axis_index(head_axes) * q.shape[2]
      all_heads = q.shape[2] * (1 if head_axes is None else jax.lax.psum(1, head_axes))
      seed = jnp.concatenate([seed, jnp.stack([jnp.asarray(first_row), jnp.asarray(first_head),
                                               jnp.asarray(all_heads)]).astype(jnp.uint32)])
    return _flash(q, k, v, bias3, q_seg, k_seg, kv_len, seed, options)

  if mesh_axes is None:
    return run(q, k, v, bias3, q_seg, k_seg, kv_len, seed)
  from jax.sharding import PartitionSpec as P
  batch_axes, head_axes = mesh_axes
  qkv = P(batch_axes, None, head_axes, None)
  specs = (qkv, qkv, qkv, None if bias3 is None else P(head_axes, None, None),
           None if q_seg is None else P(batch_axes, None),
           None if k_seg is None else P(batch_axes, None),
           None if kv_len is None else P(batch_axes), None if seed is None else P())
  # check_vma=False: pallas_call's outputs carry no varying-axes type. The map's transpose then
  # sums the cotangent of an input over the mesh axes its spec does not name: the bias
  # gradient over the batch shards, which is the sum the batch-1 bias needs.
  return jax.shard_map(functools.partial(run, sharded=True), in_specs=specs, out_specs=qkv,
                       check_vma=False)(q, k, v, bias3, q_seg, k_seg, kv_len, seed)


def _dropout_seed(dropout_rng, dropout_seed, who: str) -> Array:
  """The kernel's seed: uint32 [1], from `dropout_seed` or else the key `dropout_rng`."""
  if dropout_seed is None:
    if dropout_rng is None:
      raise ValueError(f"{who}: dropout_rate > 0 needs a dropout_seed or a dropout_rng key.")
    dropout_seed = dropout.seed_from_key(dropout_rng)
  return jnp.reshape(dropout_seed, (1,)).astype(jnp.uint32)


def reference_attention(q, k, v, bias=None, *, q_segment_ids=None, kv_segment_ids=None,
                        kv_lengths=None, causal=False, dropout_rate=0.0,
                        dropout_rng=None, dropout_seed=None) -> Array:
  """The kernel's maths in plain jnp (float32 scores): same masks, same dropout mask."""
  batch, q_len, heads, _ = q.shape
  k_len = k.shape[1]
  s = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
  if bias is not None:
    s = s + bias.astype(jnp.float32)
  q_idx, k_idx = jnp.arange(q_len), jnp.arange(k_len)
  mask = jnp.ones((batch, 1, q_len, k_len), bool)
  if q_segment_ids is not None:
    mask = mask & (q_segment_ids[:, None, :, None] == kv_segment_ids[:, None, None, :])
  if kv_lengths is not None:
    mask = mask & (k_idx[None, :] < kv_lengths[:, None])[:, None, None, :]
  if causal:
    mask = mask & (q_idx[:, None] >= k_idx[None, :])[None, None]
  s = jnp.where(mask, s, -jnp.inf)
  m = jnp.max(s, axis=-1, keepdims=True)
  m = jnp.where(m == -jnp.inf, 0.0, m)
  p = jnp.exp(s - m)
  l = jnp.sum(p, axis=-1, keepdims=True)
  p = p / jnp.where(l > 0, l, 1.0)
  if dropout_rate > 0:
    seed = _dropout_seed(dropout_rng, dropout_seed, "reference_attention")
    keep = dropout_keep_mask(seed[0], batch, heads, q_len, k_len, dropout_rate)
    p = jnp.where(keep, p / (1.0 - dropout_rate), 0.0)
  return jnp.einsum("bhqk,bkhd->bqhd", p.astype(v.dtype), v,
                    preferred_element_type=jnp.float32).astype(q.dtype)
