"""Probe: flanjax's Pallas flash attention (flanjax/flash_attention.py) on a GPU.

  PYTHONPATH=. python3 bench/probe_flash_attention.py [--check] [--time] [--sweep]

--check: outputs and gradients (q, k, v and the batch-1 relative bias) of the bf16 kernel
against `reference_attention` in float32 on the same inputs, for T5's three attentions
(encoder self, decoder causal self, cross), packed and unpacked, with and without dropout.
--time: forward+backward per layer at T5-large's shapes (16 heads x 64, inputs 512, targets
128) against the einsum path (what packed/dropout training ran before) and cuDNN (unpacked
only). --sweep: block sizes / warps / bias batch groups for the encoder; --sweep-decoder: the
same for the decoder's self and cross attention. One JSON line each.
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


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--check", action="store_true")
  p.add_argument("--time", action="store_true")
  p.add_argument("--sweep", action="store_true")
  p.add_argument("--sweep-decoder", action="store_true",
                 help="block sizes / warps / stages for the decoder's self and cross attention")
  p.add_argument("--breakdown", action="store_true")
  p.add_argument("--masks", action="store_true",
                 help="the kernel alone per attention with no segment ids, all-ones segment ids "
                      "(unpacked rows as the model passed them before kv lengths), kv lengths "
                      "(as it passes them now), packed, packed + dropout")
  p.add_argument("--mgpu", action="store_true",
                 help="JAX's Mosaic GPU (FA3-style, Hopper) attention without a bias, against "
                      "cuDNN and this kernel: the headroom of a bias-capable Hopper kernel")
  p.add_argument("--dq", action="store_true",
                 help="dQ as a GEMM over the stored dS rows (default) vs the dQ kernel, per "
                      "attention with a bias, against cuDNN where it applies")
  p.add_argument("--rows", action="store_true",
                 help="dQ and the bias gradient from the stored dS rows: XLA's reduction + "
                      "batched GEMM (two reads) vs one Pallas kernel (one read), alone at the "
                      "encoder shapes of base b256 / large b64 / xl b48 with a tiling sweep, "
                      "then per attention")
  p.add_argument("--fused", action="store_true",
                 help="the cross-attention's backward (no bias): one kernel for dQ, dK, dV "
                      "(`fused_backward`, 4 or 8 warps) vs the dK/dV and dQ kernels")
  p.add_argument("--hybrid", action="store_true",
                 help="cuDNN's forward with the Pallas backward (`FlashOptions.forward="
                      "'cudnn'`): checks against float32, then fwd + bwd per encoder "
                      "attention against cuDNN alone and the kernel alone at large's shapes "
                      "(b64, 16 heads) and base's (b256, 12 heads)")
  p.add_argument("--rows-groups", action="store_true",
                 help="the dS-rows reader alone at the headline shapes (base b256, large b112, "
                      "xl b48): row groups (programs to fill the SMs), chunk sizes; ms, GB/s "
                      "of dS read, relative error against XLA")
  p.add_argument("--sweep-bwd", action="store_true",
                 help="the dK/dV kernel's blocks / warps / stages under the block-first launch "
                      "order: the encoder's fwd + bwd with cuDNN's forward (unpacked, base "
                      "b256 and large b112) and with the kernel's (packed, large b64)")
  p.add_argument("--one", default=None, metavar="CASE,B,H",
                 help="one forward + backward of one attention (encoder: cuDNN's forward with "
                      "the kernel's backward, as auto runs it; decoder_self, cross: the "
                      "kernel's) at batch B, H heads, kv lengths: a target for ncu")
  p.add_argument("--batch", type=int, default=64)
  args = p.parse_args(argv)
  import jax
  import jax.numpy as jnp
  import numpy as np

  from bench.probe_packed_attention import packed_segments, target_segments
  from flanjax import dropout, layers
  from flanjax import flash_attention as fa

  def emit(**kw):
    print(json.dumps(kw), flush=True)

  def inputs(b, lq, lk, h, d, bias, packed, seed=0, ones=False):
    ks = jax.random.split(jax.random.PRNGKey(seed), 6)
    q = jax.random.normal(ks[0], (b, lq, h, d), jnp.bfloat16)
    k = jax.random.normal(ks[1], (b, lk, h, d), jnp.bfloat16)
    v = jax.random.normal(ks[2], (b, lk, h, d), jnp.bfloat16)
    bi = jax.random.normal(ks[3], (1, h, lq, lk), jnp.float32) if bias else None
    w = jax.random.normal(ks[4], (b, lq, h, d), jnp.float32)
    qseg = kseg = None
    if ones:  # unpacked rows without padding, as the model passes them to the kernel
      qseg, kseg = jnp.ones((b, lq), jnp.int32), jnp.ones((b, lk), jnp.int32)
    if packed:
      rng = np.random.default_rng(seed)
      kseg = packed_segments(rng, b, lk, 20, 160) if lk >= 256 else packed_segments(
          rng, b, lk, 4, 30)
      # cross: target segments of the same examples
      qseg = kseg if lq == lk else target_segments(rng, kseg, lq)
      qseg, kseg = jnp.asarray(qseg), jnp.asarray(np.where(kseg > 0, kseg, -1))
    return q, k, v, bi, w, qseg, kseg

  cases = [  # name, lq, lk, bias, causal
      ("encoder", 512, 512, True, False),
      ("decoder_self", 128, 128, True, True),
      ("cross", 128, 512, False, False),
  ]

  def rel(a, b):
    a, b = a.astype(jnp.float32), b.astype(jnp.float32)
    return float(jnp.linalg.norm(a - b) / (jnp.linalg.norm(b) + 1e-12))

  def check(name, lq, lk, bias, causal, packed, rate, batch=4, mode=None, lengths=False):
    """bf16 kernel vs float32 reference: relative errors of the output and the gradients.
    `mode="inplace"`: the in-place bias gradient over 4 rows per group (batch 8, 2 groups);
    `mode="hybrid"`: cuDNN's forward with the kernel's backward."""
    q, k, v, bi, w, qseg, kseg = inputs(batch, lq, lk, 4, 64, bias, packed)
    rng = jax.random.PRNGKey(7)
    opts = None
    kv_lengths = None
    if lengths:  # right padding: rows of all, 3/5, 1 and 1/8 of the keys
      kv_lengths = jnp.asarray(([lk, lk * 3 // 5, 1, lk // 8] * batch)[:batch], jnp.int32)
    if mode == "hybrid":
      opts = dataclasses.replace(fa.options_for(lq, lk, causal=causal, dropout_rate=rate),
                                 forward="cudnn")
    elif mode:
      opts = dataclasses.replace(fa.options_for(lq, lk, causal=causal, dropout_rate=rate),
                                 bias_grad=mode, bias_batch_groups=2)

    def loss(fn, q, k, v, bi):
      kw = {"options": opts} if fn is fa.flash_attention else {}
      o = fn(q, k, v, bi, q_segment_ids=qseg, kv_segment_ids=kseg, causal=causal,
             dropout_rate=rate, dropout_rng=rng, kv_lengths=kv_lengths, **kw)
      rows = jnp.ones(o.shape[:2]) if qseg is None else (
          jnp.any(qseg[:, :, None] == kseg[:, None, :], axis=-1))  # rows that see a key
      return jnp.sum(o.astype(jnp.float32) * w * rows[:, :, None, None]), o
    grad = jax.jit(jax.value_and_grad(loss, (1, 2, 3, 4) if bias else (1, 2, 3), has_aux=True),
                   static_argnums=0)
    (_, o1), g1 = grad(fa.flash_attention, q, k, v, bi)
    f32 = [x.astype(jnp.float32) if x is not None else None for x in (q, k, v, bi)]
    (_, o2), g2 = grad(fa.reference_attention, *f32)
    errs = {"out": rel(o1, o2)}
    errs.update({n: rel(a, b) for n, a, b in zip(("dq", "dk", "dv", "dbias"), g1, g2)})
    emit(probe="check", case=name, packed=packed, dropout=rate, mode=mode or "default",
         lengths=lengths,
         rel_err=errs, ok=all(e < 2e-2 for e in errs.values()))

  if args.check:
    for name, lq, lk, bias, causal in cases:
      for packed in (False, True):
        for rate in (0.0, 0.1):
          check(name, lq, lk, bias, causal, packed, rate)
    for name, lq, lk, bias, causal in cases[:2]:  # not yet run on a GPU (see NOTES row 38)
      check(name, lq, lk, bias, causal, True, 0.1, batch=8, mode="inplace")

  def timeit(fn, *xs, n=10):
    return ms_per_call(fn, *xs, steps=n, warmup=2)

  def fwd_bwd(attn, bias):
    def loss(q, k, v, bi, w):
      return jnp.sum(attn(q, k, v, bi).astype(jnp.float32) * w)
    return jax.jit(jax.grad(loss, (0, 1, 2, 3) if bias else (0, 1, 2)))

  def time_case(name, lq, lk, bias, causal, packed, rate, b, opts=None, impls=("flash",),
                ones=False, lengths=False, heads=16):
    q, k, v, bi, w, qseg, kseg = inputs(b, lq, lk, heads, 64, bias, packed, ones=ones)
    kv_lengths = jnp.full((b,), lk, jnp.int32) if lengths else None  # unpacked rows, no padding
    rng = jax.random.PRNGKey(3)
    res = {}
    for impl in impls:
      if impl in ("flash", "hybrid"):
        def attn(q, k, v, bi, impl=impl):
          o = opts or fa.options_for(lq, lk, causal=causal, dropout_rate=rate)
          if impl == "hybrid":
            o = dataclasses.replace(o, forward="cudnn")
          return fa.flash_attention(q, k, v, bi, q_segment_ids=qseg, kv_segment_ids=kseg,
                                    kv_lengths=kv_lengths, causal=causal, dropout_rate=rate,
                                    dropout_rng=rng, options=o)
      elif impl == "einsum":
        mask = None
        if packed:
          mask = (qseg[:, :, None] == kseg[:, None, :])[:, None]
        if causal:
          c = (jnp.arange(lq)[:, None] >= jnp.arange(lk)[None, :])[None, None]
          mask = c if mask is None else mask & c

        def attn(q, k, v, bi, mask=mask):
          return layers.einsum_attention(q, k, v, bi, mask,
                                         dropout.seed_from_key(rng) if rate else None, rate)
      elif impl == "cudnn":
        if packed or rate:
          continue

        def attn(q, k, v, bi):
          return jax.nn.dot_product_attention(
              q, k, v, bias=None if bi is None else bi.astype(q.dtype), scale=1.0,
              is_causal=causal, key_value_seq_lengths=kv_lengths, implementation="cudnn")
      try:
        ms = timeit(fwd_bwd(attn, bias), q, k, v, bi, w)
        res[impl] = round(ms, 3)
      except Exception as e:  # noqa: BLE001 - report and go on
        res[impl] = f"error: {type(e).__name__}: {str(e)[:300]}"
    return res

  if args.time:
    for name, lq, lk, bias, causal in cases:
      for packed, rate in ((False, 0.0), (True, 0.0), (True, 0.1)):
        res = time_case(name, lq, lk, bias, causal, packed, rate, args.batch,
                        impls=("flash", "einsum", "cudnn"))
        emit(probe="time_fwd_bwd_ms", case=name, packed=packed, dropout=rate,
             batch=args.batch, **res)

  if args.sweep:
    base = fa.options_for(512, 512, causal=False, dropout_rate=0.0)
    # Calls 18-20 also swept the in-place bias gradient's batch groups (1/2/4: 3.47/2.76/2.78
    # ms, rows 30-33) and its block's load issued at the top of the iteration (no gain).
    # Since row 65 the dK/dV kernel is the whole backward of an attention with a bias (dQ is a
    # GEMM over its dS rows), so its block sizes were swept again (call 59).
    r = dataclasses.replace
    variants = {"default": base,
                "fwd64x64": r(base, block_q=64, block_k=64),
                "fwd128x128": r(base, block_q=128, block_k=128),
                "bwd128x64": r(base, bwd_block_q=128, bwd_block_k=64),
                "bwd64x128": r(base, bwd_block_q=64, bwd_block_k=128),
                "bwd128x128": r(base, bwd_block_q=128, bwd_block_k=128),
                "bwd32x64": r(base, bwd_block_q=32, bwd_block_k=64),
                "warps8": r(base, num_warps=8),
                "warps8_bwd128x64": r(base, num_warps=8, bwd_block_q=128, bwd_block_k=64),
                "stages2": r(base, num_stages=2),
                "stages4": r(base, num_stages=4)}
    for vname, opts in variants.items():
      for packed in (False, True):
        res = time_case("encoder", 512, 512, True, False, packed, 0.0, args.batch, opts=opts,
                        lengths=not packed)
        emit(probe="sweep_encoder_ms", variant=vname, packed=packed, batch=args.batch, **res)

  if args.sweep_bwd:
    r = dataclasses.replace
    base = fa.options_for(512, 512, causal=False, dropout_rate=0.0)
    variants = {"default": base,
                "w8": r(base, bwd_warps=8),
                "w8_s2": r(base, bwd_warps=8, bwd_stages=2),
                "s2": r(base, bwd_stages=2),
                "s4": r(base, bwd_stages=4),
                "q128_w8": r(base, bwd_block_q=128, bwd_warps=8),
                "k128_w8": r(base, bwd_block_k=128, bwd_warps=8),
                "q128_k128_w8": r(base, bwd_block_q=128, bwd_block_k=128, bwd_warps=8),
                "q32": r(base, bwd_block_q=32),
                "k32": r(base, bwd_block_k=32)}
    for shape, b, heads, packed in (("base", 256, 12, False), ("large", 112, 16, False),
                                    ("large", 64, 16, True)):
      row = {}
      for vname, opts in variants.items():
        res = time_case("encoder", 512, 512, True, False, packed, 0.0, b, opts=opts,
                        impls=("flash",) if packed else ("hybrid",), lengths=not packed,
                        heads=heads)
        row[vname] = next(iter(res.values()))
      times = {n: t for n, t in row.items() if isinstance(t, float)}
      emit(probe="sweep_bwd_ms", shape=shape, batch=b, heads=heads, packed=packed,
           best=min(times, key=times.get) if times else None, **row)

  if args.sweep_decoder:
    for name, lq, lk, bias, causal in cases[1:]:
      base = fa.options_for(lq, lk, causal=causal, dropout_rate=0.0)
      variants = {"default": base,
                  "fwd64x64": dataclasses.replace(base, block_q=64, block_k=64),
                  "fwd128x128": dataclasses.replace(base, block_q=128, block_k=128),
                  "bwd128x64": dataclasses.replace(base, bwd_block_q=128, bwd_block_k=64),
                  "bwd64x128": dataclasses.replace(base, bwd_block_q=64, bwd_block_k=128),
                  "bwd32x64": dataclasses.replace(base, bwd_block_q=32, bwd_block_k=64),
                  "warps8": dataclasses.replace(base, num_warps=8),
                  "stages2": dataclasses.replace(base, num_stages=2),
                  "stages4": dataclasses.replace(base, num_stages=4)}
      for vname, opts in variants.items():
        for packed in (False, True):
          res = time_case(name, lq, lk, bias, causal, packed, 0.0, args.batch, opts=opts)
          emit(probe="sweep_decoder_ms", case=name, variant=vname, packed=packed,
               batch=args.batch, **res)

  if args.breakdown:  # encoder, unpacked: forward alone, with/without the bias, bf16 bias
    b = args.batch
    q, k, v, bi, w, _, _ = inputs(b, 512, 512, 16, 64, True, False)

    def flash(q, k, v, bi):
      return fa.flash_attention(q, k, v, bi)

    def cudnn(q, k, v, bi):
      return jax.nn.dot_product_attention(q, k, v, bias=None if bi is None else
                                          bi.astype(q.dtype), scale=1.0,
                                          implementation="cudnn")
    for name, attn in (("flash", flash), ("cudnn", cudnn)):
      for label, bias in (("bias", bi), ("bias_bf16", None if bi is None else
                                         bi.astype(jnp.bfloat16)), ("no_bias", None)):
        fwd = jax.jit(lambda q, k, v, bi, attn=attn: attn(q, k, v, bi))
        row = {"fwd": round(timeit(fwd, q, k, v, bias), 3)}
        row["fwd_bwd"] = round(timeit(fwd_bwd(attn, bias is not None), q, k, v, bias, w), 3)
        emit(probe="breakdown_encoder_ms", impl=name, bias=label, batch=b, **row)

  if args.masks:
    for name, lq, lk, bias, causal in cases:
      for mode, packed, rate in (("none", False, 0.0), ("ones", False, 0.0),
                                 ("lengths", False, 0.0), ("packed", True, 0.0),
                                 ("packed_dropout", True, 0.1)):
        res = time_case(name, lq, lk, bias, causal, packed, rate, args.batch, ones=mode == "ones",
                        lengths=mode == "lengths")
        emit(probe="masks_fwd_bwd_ms", case=name, segments=mode, batch=args.batch, **res)

  if args.hybrid:
    for lengths in (False, True):
      check("encoder", 512, 512, True, False, False, 0.0, mode="hybrid", lengths=lengths)
    check("decoder_self", 128, 128, True, True, False, 0.0, mode="hybrid", lengths=True)
    check("cross", 128, 512, False, False, False, 0.0, mode="hybrid", lengths=True)
    for batch, heads in ((64, 16), (256, 12)):
      res = time_case("encoder", 512, 512, True, False, False, 0.0, batch, lengths=True,
                      impls=("cudnn", "flash", "hybrid"), heads=heads)
      emit(probe="hybrid_fwd_bwd_ms", case="encoder", batch=batch, heads=heads, **res)
    for batch, heads in ((64, 16), (256, 12)):  # the cross-attention: no bias, kv lengths
      res = time_case("cross", 128, 512, False, False, False, 0.0, batch, lengths=True,
                      impls=("cudnn", "flash", "hybrid"), heads=heads)
      emit(probe="hybrid_fwd_bwd_ms", case="cross", batch=batch, heads=heads, **res)

  if args.fused:
    base = fa.options_for(128, 512, causal=False, dropout_rate=0.0)
    r = dataclasses.replace
    variants = {"two_kernels": r(base, fused_backward=False), "fused_w8": base,
                "fused_w4": r(base, fused_warps=4), "fused_bk32": r(base, bwd_block_k=32)}
    for packed, rate, lengths in ((False, 0.0, True), (True, 0.0, False), (True, 0.1, False)):
      res = {}
      for vname, opts in variants.items():
        res.update({vname: time_case("cross", 128, 512, False, False, packed, rate, args.batch,
                                     opts=opts, lengths=lengths)["flash"]})
      emit(probe="fused_bwd_ms", case="cross", packed=packed, dropout=rate, lengths=lengths,
           batch=args.batch, **res)

  if args.dq:
    for name, lq, lk, bias, causal in cases[:2]:  # the attentions with a bias
      base = fa.options_for(lq, lk, causal=causal, dropout_rate=0.0)
      for mode, packed, rate in (("lengths", False, 0.0), ("packed", True, 0.0),
                                 ("packed_dropout", True, 0.1)):
        res = {}
        for vname, opts in (("dq_rows", base),
                            ("dq_kernel", dataclasses.replace(base, dq_from_rows=False))):
          res[vname] = time_case(name, lq, lk, bias, causal, packed, rate, args.batch,
                                 opts=opts, lengths=mode == "lengths")["flash"]
        if not packed:
          res["cudnn"] = time_case(name, lq, lk, bias, causal, packed, rate, args.batch,
                                   impls=("cudnn",))["cudnn"]
        emit(probe="dq_fwd_bwd_ms", case=name, segments=mode, batch=args.batch, **res)

  def reader_sweep(b, h, lq, tilings):
    """The dS-rows reader alone on random [b, h, lq, lq] dS rows: XLA's reduction (+ GEMM) and
    each tiling (bq, bk, warps, groups, stages): ms, GB/s of dS, and the larger relative
    error of dQ and the bias gradient against XLA's (or the error)."""
    import functools
    ks = jax.random.split(jax.random.PRNGKey(1), 2)
    ds = (jax.random.normal(ks[0], (b, h, lq, lq), jnp.float32) * 1e-3).astype(jnp.bfloat16)
    kk = jax.random.normal(ks[1], (b, lq, h, 64), jnp.bfloat16)
    gb = ds.size * 2 / 1e9

    def xla(ds, kk):
      dq = jnp.einsum("bhqk,bkhd->bqhd", ds, kk, preferred_element_type=jnp.float32)
      return dq.astype(jnp.bfloat16), jnp.sum(ds.astype(jnp.float32), axis=0)
    ref = jax.jit(xla)(ds, kk)
    t_sum = timeit(jax.jit(lambda ds: jnp.sum(ds.astype(jnp.float32), 0)), ds)
    row = {"ds_gb": round(gb, 3), "xla_both": round(timeit(jax.jit(xla), ds, kk), 3),
           "xla_sum": round(t_sum, 3), "xla_sum_gbs": round(gb / t_sum * 1e3)}
    base_opts = fa.options_for(lq, lq, causal=False, dropout_rate=0.0)
    for bq, bk, warps, groups, stages in tilings:
      name = f"q{bq}_k{bk}_w{warps}_g{groups}_s{stages}"
      opts = dataclasses.replace(base_opts, rows_block_q=bq, rows_block_k=bk, rows_warps=warps,
                                 rows_groups=groups, rows_stages=stages)
      try:
        fn = jax.jit(functools.partial(fa._read_rows, opts, q_dtype=jnp.bfloat16))
        out = fn(ds, kk)
        t = timeit(fn, ds, kk)
        row[name] = [round(t, 3), round(gb / t * 1e3),
                     max(round(rel(out[0], ref[0]), 6), round(rel(out[1], ref[1]), 6))]
      except Exception as e:  # noqa: BLE001 - report and go on
        row[name] = f"error: {type(e).__name__}: {str(e)[:160]}"
    times = {n: v[0] for n, v in row.items() if isinstance(v, list)}
    return row, (min(times, key=times.get) if times else None)

  if args.rows:
    r = dataclasses.replace
    # Call 67 swept (32|16, 128|64|512, 4|8 warps, 1-4 stages, 1 group): 64 x 64 / 8 warps /
    # 2 stages best for 512 keys, 32 x 512 / 1 stage for 128; 64 x 128 at 3 stages and
    # 32 x 128 at 4 ran out of shared memory. Call 68: around the winners.
    tilings = [(64, 64, 8, 0, 2), (64, 64, 8, 0, 1), (64, 64, 16, 0, 2), (64, 64, 16, 0, 1),
               (64, 32, 8, 0, 2), (64, 32, 16, 0, 3), (64, 128, 16, 0, 1), (64, 64, 8, 1, 2),
               (64, 64, 8, 4, 2), (32, 512, 8, 0, 1), (64, 512, 16, 0, 1), (128, 64, 16, 0, 1)]
    for size, b, h, lq in (("base", 256, 12, 512), ("large", 64, 16, 512), ("xl", 48, 32, 512),
                           ("large_dec_self", 64, 16, 128)):
      row, best = reader_sweep(b, h, lq, tilings)
      emit(probe="rows_reader_ms_gbs_err", size=size, batch=b, heads=h, length=lq, best=best,
           **row)
    # Per attention (T5-large shapes, batch --batch): forward + backward with each reader.
    pick = "options_for"  # the per-length default tiling (call 67's winners)
    for name, lq, lk, bias, causal in cases[:2]:
      opts = fa.options_for(lq, lk, causal=causal, dropout_rate=0.0)
      kern = r(opts, rows_reader="kernel")
      for mode, packed, rate in (("lengths", False, 0.0), ("packed", True, 0.0),
                                 ("packed_dropout", True, 0.1)):
        res = {}
        for vname, o in (("xla", opts), ("kernel", kern), ("xla_again", opts)):
          res[vname] = time_case(name, lq, lk, bias, causal, packed, rate, args.batch,
                                 opts=o, lengths=mode == "lengths")["flash"]
        if not packed:
          res["cudnn"] = time_case(name, lq, lk, bias, causal, packed, rate, args.batch,
                                   impls=("cudnn",))["cudnn"]
        emit(probe="rows_fwd_bwd_ms", case=name, segments=mode, batch=args.batch, tiling=pick,
             **res)

  if args.rows_groups:
    # Call 106 also ran the sum on the tensor cores (identity @ dS) and two rows per loop
    # iteration: both exceed shared memory (270 / 401 KB).
    tilings = ([(64, 64, 8, g, 2) for g in (1, 2, 4, 8)] + [(64, 512, 8, g, 1) for g in (1, 4)]
               + [(64, 128, 8, 1, 2), (32, 64, 4, 4, 2), (32, 64, 4, 8, 3),
                  (64, 128, 16, 1, 2), (64, 128, 16, 1, 1), (64, 256, 16, 1, 1)])
    for size, b, h in (("base", 256, 12), ("large", 112, 16), ("xl", 48, 32)):
      row, best = reader_sweep(b, h, 512, tilings)
      emit(probe="rows_groups_ms_gbs_err", size=size, batch=b, heads=h, best=best, **row)

  if args.one:  # ncu target: the kernels of one attention, fwd + bwd
    name, b, h = args.one.split(",")
    b, h = int(b), int(h)
    _, lq, lk, bias, causal = next(c for c in cases if c[0] == name)
    q, k, v, bi, w, _, _ = inputs(b, lq, lk, h, 64, bias, False)
    lens = jnp.full((b,), lk, jnp.int32)
    opts = fa.options_for(lq, lk, causal=causal, dropout_rate=0.0)
    if name == "encoder":
      opts = dataclasses.replace(opts, forward="cudnn")

    def attn(q, k, v, bi):
      return fa.flash_attention(q, k, v, bi, kv_lengths=lens, causal=causal, options=opts)
    out = fwd_bwd(attn, bias)(q, k, v, bi, w)
    jax.block_until_ready(out)
    emit(probe="one", case=name, batch=b, heads=h, done=True)

  if args.mgpu:  # the encoder's shapes; the Mosaic kernel itself takes no bias
    from jax.experimental.pallas.ops.gpu import attention_mgpu as am
    b, case, lq = args.batch, "encoder", 512
    q, k, v, bi, w, _, _ = inputs(b, lq, 512, 16, 64, True, False)
    ref = jax.nn.dot_product_attention(q.astype(jnp.float32), k.astype(jnp.float32),
                                       v.astype(jnp.float32), scale=1.0)
    impls = {
        "cudnn_no_bias": lambda q, k, v, bi: jax.nn.dot_product_attention(
            q, k, v, scale=1.0, implementation="cudnn"),
        "cudnn_bias": lambda q, k, v, bi: jax.nn.dot_product_attention(
            q, k, v, bias=bi.astype(q.dtype), scale=1.0, implementation="cudnn"),
        "flash_no_bias": lambda q, k, v, bi: fa.flash_attention(q, k, v, None),
        "flash_bias": lambda q, k, v, bi: fa.flash_attention(q, k, v, bi),
    }
    for bq, bkv, steps, wgs, bb in ((64, 64, 2, 1, 64), (64, 128, 2, 1, 64),
                                    (64, 128, 3, 1, 64), (64, 64, 2, 2, 64),
                                    (64, 128, 2, 2, 64), (64, 64, 2, 1, 128)):
      cfg = am.TuningConfig(block_q=bq, block_kv=bkv, max_concurrent_steps=steps,
                            compute_wgs_bwd=wgs, block_q_dkv=bb, block_kv_dkv=64,
                            block_q_dq=64, block_kv_dq=bb)
      impls[f"mgpu_q{bq}_kv{bkv}_s{steps}_wg{wgs}_b{bb}"] = (
          lambda q, k, v, bi, cfg=cfg: am.attention(q, k, v, cfg))
    # The Mosaic kernel's shared-memory buffers are float16: it gets float16 inputs (the same
    # speed as bf16 on the tensor cores).
    q16, k16, v16 = (x.astype(jnp.float16) for x in (q, k, v))
    for name, attn in impls.items():
      bias = name.endswith("_bias") and not name.endswith("no_bias")
      xs = (q16, k16, v16) if name.startswith("mgpu") else (q, k, v)
      row = {}
      try:
        fwd = jax.jit(lambda q, k, v, bi, attn=attn: attn(q, k, v, bi))
        row["rel_err"] = float(rel(fwd(*xs, bi).astype(jnp.float32), ref)) if not bias \
            else None
        row["fwd"] = round(timeit(fwd, *xs, bi), 3)
        row["fwd_bwd"] = round(timeit(fwd_bwd(attn, bias), *xs, bi, w), 3)
      except Exception as e:  # noqa: BLE001 - report and go on
        row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
      emit(probe="mgpu_ms", case=case, impl=name, batch=b, **row)


if __name__ == "__main__":
  main()
