"""Probe: cuDNN packed (ragged) attention with T5's trainable relative bias, against einsum.

  PYTHONPATH=. python3 bench/probe_packed_attention.py [--time]

Packed rows (several examples per row, segment ids 1..k then padding) are what
`EncDecFeatureConverter` feeds the trainer. cuDNN's packed layout takes per-segment offsets and
lengths instead of a mask, so the relative bias can stay of batch 1 (its gradient is kept); T5's
bias depends only on k - q, so segment-local or row positions give the same values. This checks
outputs and gradients (q, k, v and the bias table) against the einsum reference with a segment
mask, for the three attentions of T5 (encoder self, decoder causal self, cross), and times them.
Rows outside every segment (padding) are never written by cuDNN: they are zeroed in the output
and in the gradients. Result (bench/NOTES.md, row 24): right gradients, but slower than einsum
unless the static segment bound M is small; not used by flanjax.
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


def packed_segments(rng, b, t, lo, hi):
  """Segment ids [b, t]: 1..n for examples of lengths in [lo, hi], then padding (0); some rows
  end with more padding than others."""
  import numpy as np
  seg = np.zeros((b, t), np.int32)
  for i in range(b):
    pos, k = 0, 1
    while True:
      n = int(rng.integers(lo, hi + 1))
      if pos + n > t - (i % 3) * 7:
        break
      seg[i, pos:pos + n] = k
      pos, k = pos + n, k + 1
  return seg


def target_segments(rng, input_seg, t):
  """Target segment ids [b, t] of the examples of `input_seg` (2-11 tokens each, in order,
  while they fit; the rest of the row is padding)."""
  import numpy as np
  seg = np.zeros((input_seg.shape[0], t), np.int32)
  for i in range(input_seg.shape[0]):
    pos = 0
    for s in range(1, input_seg[i].max() + 1):
      n = int(rng.integers(2, 12))
      if pos + n > t:
        break
      seg[i, pos:pos + n] = s
      pos += n
  return seg


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--time", action="store_true")
  args = p.parse_args(argv)
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax._src.cudnn.fused_attention_stablehlo import MaskType
  from jax._src.cudnn.fused_attention_stablehlo import dot_product_attention as cudnn_dpa

  from flanjax import layers

  def packed_pair(rng, b, te, td):
    """Encoder segments [b, te] and decoder segments [b, td] of the same examples (the short
    targets decide how many fit; encoder examples without a target become padding)."""
    eseg = packed_segments(rng, b, te, 20, 160)
    dseg = target_segments(rng, eseg, td)
    for i in range(b):
      eseg[i][eseg[i] > dseg[i].max()] = 0
    return eseg, dseg

  def attention_inputs(rng, b, tq, tk, h, d):
    """q, k, v (bf16), the bias table [h, 32] and the loss weights r (float32)."""
    q = jnp.asarray(rng.standard_normal((b, tq, h, d)), jnp.bfloat16)
    k = jnp.asarray(rng.standard_normal((b, tk, h, d)), jnp.bfloat16)
    v = jnp.asarray(rng.standard_normal((b, tk, h, d)), jnp.bfloat16)
    rel = jnp.asarray(rng.standard_normal((h, 32)), jnp.float32)
    r = jnp.asarray(rng.standard_normal((b, tq, h, d)), jnp.float32)
    return q, k, v, rel, r

  def layout(seg, m):
    ids = jnp.arange(1, m + 1, dtype=jnp.int32)  # [m]
    counts = jnp.sum(seg[:, None, :] == ids[None, :, None], axis=-1, dtype=jnp.int32)  # [b, m]
    starts = jnp.cumsum(counts, axis=-1) - counts  # [b, m]
    seqlen = jnp.where(counts > 0, counts, -1)
    offsets = jnp.where(counts > 0, starts, -1)
    offsets = jnp.concatenate([offsets, jnp.full((seg.shape[0], 1), -1, jnp.int32)], axis=1)
    return seqlen, offsets

  def toeplitz(rel, q_len, k_len, bidirectional):
    ob = layers._static_offset_buckets(q_len, k_len, bidirectional, 32, 128)
    return layers._toeplitz_bias(rel, q_len, k_len, ob)  # [1, h, q, k] f32

  def make_fns(kind, tq, tk, m):
    bidirectional = kind == "enc"
    use_bias = kind != "cross"
    causal = kind == "dec"

    def fused(q, k, v, rel, qseg, kseg):
      bias = toeplitz(rel, tq, tk, bidirectional).astype(q.dtype) if use_bias else None
      qs, qo = layout(qseg, m)
      ks, ko = layout(kseg, m)
      qv = (qseg > 0)[:, :, None, None]
      kv = (kseg > 0)[:, :, None, None]

      def raw(q, k, v, bias):
        return cudnn_dpa(q, k, v, bias, None, qs, ks, qo, ko, scale=1.0,
                         mask_type=MaskType.PADDING_CAUSAL if causal else MaskType.PADDING)
      attend = jax.custom_vjp(raw)

      def attend_fwd(q, k, v, bias):
        out, vjp = jax.vjp(raw, q, k, v, bias)
        return out, vjp

      def attend_bwd(vjp, g):
        # Rows outside every segment are never written by cuDNN: zero them both ways.
        dq, dk, dv, db = vjp(jnp.where(qv, g, 0))
        return (jnp.where(qv, dq, 0), jnp.where(kv, dk, 0), jnp.where(kv, dv, 0), db)
      attend.defvjp(attend_fwd, attend_bwd)
      return jnp.where(qv, attend(q, k, v, bias), 0)

    def fused_unpacked(q, k, v, rel, qseg, kseg):
      bias = toeplitz(rel, tq, tk, bidirectional).astype(q.dtype) if use_bias else None
      ql = jnp.sum(qseg > 0, axis=-1, dtype=jnp.int32)
      kl = jnp.sum(kseg > 0, axis=-1, dtype=jnp.int32)
      return jax.nn.dot_product_attention(q, k, v, bias, scale=1.0, is_causal=causal,
                                          query_seq_lengths=ql, key_value_seq_lengths=kl,
                                          implementation="cudnn")

    def ref(q, k, v, rel, qseg, kseg):
      bias = toeplitz(rel, tq, tk, bidirectional) if use_bias else None
      mask = (qseg[:, :, None] == kseg[:, None, :]) & (qseg > 0)[:, :, None]
      if causal:
        mask = mask & jnp.tril(jnp.ones((tq, tk), bool))[None]
      out = layers.einsum_attention(q, k, v, bias, mask[:, None])
      return jnp.where((qseg > 0)[:, :, None, None], out, 0)
    return fused, fused_unpacked, ref

  def loss_and_grad(fn, r):
    def loss(q, k, v, rel, qseg, kseg):
      return jnp.sum(fn(q, k, v, rel, qseg, kseg).astype(jnp.float32) * r)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))

  rng = np.random.default_rng(0)
  results = []
  # ---------------------------------------------------------------- correctness
  b, h, d, te, td = 4, 16, 64, 512, 128
  eseg, dseg = packed_pair(rng, b, te, td)
  m = int(max(eseg.max(), dseg.max()))
  print('segments', m, flush=True)
  for kind, tq, tk, qseg, kseg in (("enc", te, te, eseg, eseg), ("dec", td, td, dseg, dseg),
                                   ("cross", td, te, dseg, eseg)):
    q, k, v, rel, r = attention_inputs(rng, b, tq, tk, h, d)
    fused, _, ref = make_fns(kind, tq, tk, m)
    row = {"check": kind}
    try:
      lf, gf = loss_and_grad(fused, r)(q, k, v, rel, jnp.asarray(qseg), jnp.asarray(kseg))
      lr, gr = loss_and_grad(ref, r)(q, k, v, rel, jnp.asarray(qseg), jnp.asarray(kseg))
      out_f = jax.jit(fused)(q, k, v, rel, jnp.asarray(qseg), jnp.asarray(kseg))
      out_r = jax.jit(ref)(q, k, v, rel, jnp.asarray(qseg), jnp.asarray(kseg))
      row["out_rel"] = float(jnp.linalg.norm((out_f - out_r).astype(jnp.float32))
                             / jnp.linalg.norm(out_r.astype(jnp.float32)))
      for name, a, c in zip(("dq", "dk", "dv", "drel"), gf, gr):
        a, c = np.asarray(a, np.float64), np.asarray(c, np.float64)
        row[name + "_rel"] = float(np.linalg.norm(a - c) / max(np.linalg.norm(c), 1e-30))
        row[name + "_finite"] = bool(np.isfinite(a).all())
      row["loss_f"], row["loss_r"] = float(lf), float(lr)
    except Exception as e:  # noqa: BLE001 (a probe: report and go on)
      row["error"] = f"{type(e).__name__}: {str(e)[:600]}"
    print(json.dumps(row), flush=True)
    results.append(row)

  if not args.time:
    return
  # ---------------------------------------------------------------- timing (T5-large shapes)
  b, h = 96, 16
  eseg, dseg = packed_pair(rng, b, te, td)
  nseg = int(eseg.max())
  for kind, tq, tk, qseg, kseg in (("enc", te, te, eseg, eseg), ("dec", td, td, dseg, dseg),
                                   ("cross", td, te, dseg, eseg)):
    q, k, v, rel, r = attention_inputs(rng, b, tq, tk, h, d)
    qs, ks = jnp.asarray(qseg), jnp.asarray(kseg)
    for m in (8, 16):
      fused, fused_unpacked, ref = make_fns(kind, tq, tk, m)
      variants = {f"ragged_m{m}": fused}
      if m == 8:
        variants.update(unpacked_cudnn=fused_unpacked, einsum=ref)
      for name, fn in variants.items():
        f = loss_and_grad(fn, r)
        try:
          jax.block_until_ready(f(q, k, v, rel, qs, ks))
          ts = []
          for _ in range(10):
            t0 = time.perf_counter()
            jax.block_until_ready(f(q, k, v, rel, qs, ks))
            ts.append(time.perf_counter() - t0)
          row = {"time": kind, "variant": name, "batch": b, "ms": 1e3 * float(np.median(ts)),
                 "segments_max": nseg}
        except Exception as e:  # noqa: BLE001
          row = {"time": kind, "variant": name, "error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
