"""Pallas flash attention (flanjax/flash_attention.py), run in Pallas' interpreter on CPU.

The kernels are checked against `reference_attention` (plain jnp, float32) for outputs and the
gradients of q, k, v and the batch-1 relative bias, and the model's Pallas path against its
einsum path. On a GPU the same kernels compile through Triton (bench/probe_flash_attention.py
checks them there).
"""
import dataclasses
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_grads_close
from mesh_models import TESTS_DIR

from flanjax import flash_attention as fa
from flanjax import losses
from flanjax import model as M
from flanjax.config import get_config

SMALL = fa.FlashOptions(block_q=16, block_k=16, bwd_block_q=16, bwd_block_k=16, interpret=True)


def _inputs(b=2, lq=32, lk=32, h=2, d=16, packed=False, seed=0):
  ks = jax.random.split(jax.random.PRNGKey(seed), 5)
  q = jax.random.normal(ks[0], (b, lq, h, d))
  k = jax.random.normal(ks[1], (b, lk, h, d))
  v = jax.random.normal(ks[2], (b, lk, h, d))
  bias = jax.random.normal(ks[3], (1, h, lq, lk))
  w = jax.random.normal(ks[4], (b, lq, h, d))
  segs = (None, None)
  if packed:  # three examples then padding; keys of padding get -1 (hidden from every query)
    q_seg = np.zeros((b, lq), np.int32)
    q_seg[:, :lq // 3] = 1
    q_seg[:, lq // 3:2 * lq // 3] = 2
    q_seg[0, 2 * lq // 3:] = 3
    k_seg = np.full((b, lk), -1, np.int32)
    k_seg[:, :lk // 2] = 1
    k_seg[:, lk // 2:3 * lk // 4] = 2
    k_seg[0, 3 * lk // 4:] = 3
    segs = (jnp.asarray(q_seg), jnp.asarray(k_seg))
  return q, k, v, bias, w, segs


def _value_and_grads(fn, q, k, v, bias, w, segs, **kw):
  def loss(q, k, v, bias):
    o = fn(q, k, v, bias, q_segment_ids=segs[0], kv_segment_ids=segs[1], **kw)
    return jnp.sum(o * w), o
  (_, out), grads = jax.value_and_grad(loss, (0, 1, 2, 3), has_aux=True)(q, k, v, bias)
  return out, grads


@pytest.mark.parametrize("causal,packed,rate,lq,lk,bias_grad", [
    (False, False, 0.0, 32, 32, "rows"),  # encoder
    (True, False, 0.0, 32, 32, "rows"),  # decoder self-attention
    (False, True, 0.0, 32, 32, "rows"),  # packed encoder (padding rows see no key)
    (True, True, 0.3, 32, 32, "rows"),  # packed decoder with dropout
    (False, True, 0.2, 16, 48, "rows"),  # packed cross-attention with dropout
    (False, True, 0.0, 32, 32, "inplace"),  # the in-place bias gradient, 2 rows per group
    (True, True, 0.3, 32, 32, "inplace"),
    # dQ from the dQ kernel instead of the GEMM over the stored dS rows
    (True, True, 0.3, 32, 32, "rows/dq_kernel"),
    (False, True, 0.2, 16, 48, "rows/dq_kernel"),
    # dQ and the bias gradient from the stored dS rows by XLA (a reduction and a GEMM) instead
    # of the reader kernel (the default, run above with 2 groups of 2 rows and 16-key chunks)
    (False, False, 0.0, 32, 32, "rows/rows_xla"),
    (True, True, 0.3, 32, 32, "rows/rows_xla"),
    (False, True, 0.2, 16, 48, "rows/rows_xla"),
])
def test_kernel_matches_reference(causal, packed, rate, lq, lk, bias_grad):
  q, k, v, bias, w, segs = _inputs(b=4, lq=lq, lk=lk, packed=packed)
  kw = dict(causal=causal, dropout_rate=rate, dropout_rng=jax.random.PRNGKey(5))
  mode, _, variant = bias_grad.partition("/")
  opts = dataclasses.replace(SMALL, bias_grad=mode, bias_batch_groups=2,
                             dq_from_rows=variant != "dq_kernel",
                             rows_reader="xla" if variant == "rows_xla" else "kernel",
                             rows_block_q=16, rows_block_k=16, rows_groups=2)
  out, grads = _value_and_grads(fa.flash_attention, q, k, v, bias, w, segs, options=opts, **kw)
  ref_out, ref_grads = _value_and_grads(fa.reference_attention, q, k, v, bias, w, segs, **kw)
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
  for name, g, r in zip(("dq", "dk", "dv", "dbias"), grads, ref_grads):
    assert float(jnp.max(jnp.abs(r))) > 0, name  # the reference gradient is not trivially 0
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(r))),
                               err_msg=name)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("causal,packed,rate,lq,lk,lengths", [
    (False, False, 0.0, 16, 48, False),  # cross-attention (no bias)
    (False, True, 0.2, 16, 48, False),  # packed, dropout
    (False, False, 0.2, 32, 48, True),  # right padding as kv lengths (row 2 sees no key)
    (True, True, 0.3, 32, 32, False),  # causal: always the two kernels
])
def test_bias_free_backward_fused_and_two_kernels_match_reference(fused, causal, packed, rate,
                                                                   lq, lk, lengths):
  """Without a bias (T5's cross-attention) one kernel per (row, head) gives dQ, dK and dV
  (`fused_backward`); the dK/dV + dQ kernels are the alternative. Both match the reference."""
  q, k, v, _, w, segs = _inputs(b=4, lq=lq, lk=lk, packed=packed)
  kw = dict(causal=causal, dropout_rate=rate, dropout_rng=jax.random.PRNGKey(5))
  if lengths:
    kw["kv_lengths"] = jnp.asarray([lk, lk - 12, 0, 7], jnp.int32)
  opts = dataclasses.replace(SMALL, fused_backward=fused)

  def grads(fn, **extra):
    def loss(q, k, v):
      o = fn(q, k, v, None, q_segment_ids=segs[0], kv_segment_ids=segs[1], **kw, **extra)
      return jnp.sum(o * w)
    return jax.grad(loss, (0, 1, 2))(q, k, v)

  calls = []
  real = fa._fused_backward
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(fa, "_fused_backward", lambda *a: calls.append(1) or real(*a))
    got = grads(fa.flash_attention, options=opts)
  assert bool(calls) == (fused and not causal)
  for name, g, r in zip(("dq", "dk", "dv"), got, grads(fa.reference_attention)):
    assert float(jnp.max(jnp.abs(r))) > 0, name
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(r))),
                               err_msg=name)
  if lengths:  # keys past a row's length get no gradient, and a row without keys none at all
    assert bool(jnp.all(got[1][1, lk - 12:] == 0)) and bool(jnp.all(got[1][2] == 0))
    assert bool(jnp.all(got[0][2] == 0))


@pytest.mark.parametrize("causal,rate,lq,lk", [
    (False, 0.0, 32, 32),  # encoder
    (True, 0.3, 32, 32),  # decoder self-attention with dropout
    (False, 0.2, 16, 48),  # cross-attention with dropout
])
def test_kv_lengths_match_the_reference_and_padding_segment_ids(causal, rate, lq, lk):
  """Right padding as kv_lengths (what the model passes for unpacked rows): the same outputs and
  gradients as the reference, and as segment ids that hide the same keys. Row 2 has no key."""
  q, k, v, bias, w, _ = _inputs(b=4, lq=lq, lk=lk)
  lengths = jnp.asarray([lk, lk - 12, 0, 7], jnp.int32)
  kw = dict(causal=causal, dropout_rate=rate, dropout_rng=jax.random.PRNGKey(5))
  no_segs = (None, None)
  out, grads = _value_and_grads(fa.flash_attention, q, k, v, bias, w, no_segs, options=SMALL,
                                kv_lengths=lengths, **kw)
  ref_out, ref_grads = _value_and_grads(fa.reference_attention, q, k, v, bias, w, no_segs,
                                        kv_lengths=lengths, **kw)
  segs = (jnp.ones((4, lq), jnp.int32),
          jnp.where(jnp.arange(lk)[None] < lengths[:, None], 1, -1).astype(jnp.int32))
  seg_out, seg_grads = _value_and_grads(fa.flash_attention, q, k, v, bias, w, segs,
                                        options=SMALL, **kw)
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out, seg_out, rtol=1e-6, atol=1e-6)
  assert bool(jnp.all(out[2] == 0)) and float(jnp.max(jnp.abs(out[3]))) > 0
  for name, g, r, sg in zip(("dq", "dk", "dv", "dbias"), grads, ref_grads, seg_grads):
    assert float(jnp.max(jnp.abs(r))) > 0, name
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(r))),
                               err_msg=name)
    np.testing.assert_allclose(g, sg, rtol=1e-6, atol=1e-6 * float(jnp.max(jnp.abs(r))),
                               err_msg=name)
  dk = grads[1]
  assert bool(jnp.all(dk[1, lk - 12:] == 0)) and bool(jnp.all(dk[2] == 0))
  with pytest.raises(ValueError, match=r"kv_lengths must be \[batch\] = \(4,\)"):
    fa.flash_attention(q, k, v, bias, kv_lengths=lengths[:2], options=SMALL)


def test_rows_without_keys_output_zero_and_pass_no_gradient():
  q, k, v, bias, w, _ = _inputs()
  q_seg = jnp.ones((2, 32), jnp.int32).at[:, 24:].set(0)  # rows 24.. match no key
  k_seg = jnp.ones((2, 32), jnp.int32)
  out, (dq, dk, dv, dbias) = _value_and_grads(fa.flash_attention, q, k, v, bias, w,
                                              (q_seg, k_seg), options=SMALL)
  assert bool(jnp.all(out[:, 24:] == 0)) and bool(jnp.all(dq[:, 24:] == 0))
  assert bool(jnp.all(dbias[:, :, 24:] == 0)) and bool(jnp.all(jnp.isfinite(dk)))
  assert float(jnp.max(jnp.abs(out[:, :24]))) > 0


def test_dropout_mask_rate_and_independence():
  seed = jnp.uint32(1234)
  keep = fa.dropout_keep_mask(seed, 4, 2, 64, 64, 0.1)  # 32768 draws
  assert abs(float(jnp.mean(keep)) - 0.9) < 0.01  # ~6 standard deviations
  other = fa.dropout_keep_mask(jnp.uint32(1235), 4, 2, 64, 64, 0.1)
  assert 0.75 < float(jnp.mean(keep == other)) < 0.9  # independent draws agree ~82 %
  assert not bool(jnp.all(keep[0, 0] == keep[0, 1])) and not bool(jnp.all(keep[0] == keep[1]))


def test_unsupported_shapes_and_arguments_are_refused():
  q, k, v, bias, _, _ = _inputs(lq=24, lk=32)
  with pytest.raises(ValueError, match="query length 24 is not a multiple of the block"):
    fa.flash_attention(q, k, v, bias[:, :, :24], options=SMALL)
  q, k, v, bias, _, (q_seg, _) = _inputs(packed=True)
  with pytest.raises(ValueError, match="give both q_segment_ids and kv_segment_ids"):
    fa.flash_attention(q, k, v, bias, q_segment_ids=q_seg, options=SMALL)
  with pytest.raises(ValueError, match="needs a dropout_seed or a dropout_rng"):
    fa.flash_attention(q, k, v, bias, dropout_rate=0.1, options=SMALL)
  with pytest.raises(ValueError, match=r"bias must be \[1, heads, q, k\]"):
    fa.flash_attention(q, k, v, jnp.concatenate([bias, bias]), options=SMALL)
  with pytest.raises(ValueError, match=r"bias must be \[1, heads, q, k\] = \(1, 2, 32, 32\)"):
    fa.flash_attention(q, k, v, bias[:, :1], options=SMALL)
  with pytest.raises(ValueError, match="segment ids must be"):
    fa.flash_attention(q, k, v, bias, q_segment_ids=q_seg, kv_segment_ids=q_seg[:, :16],
                       options=SMALL)
  with pytest.raises(ValueError, match="equal batch, heads and head_dim"):
    fa.flash_attention(q, k[:, :, :1], v[:, :, :1], bias, options=SMALL)
  cudnn_fwd = dataclasses.replace(SMALL, forward="cudnn")
  with pytest.raises(ValueError, match="forward='cudnn' takes no segment ids"):
    fa.flash_attention(q, k, v, bias, q_segment_ids=q_seg, kv_segment_ids=q_seg,
                       options=cudnn_fwd)
  with pytest.raises(ValueError, match="forward='cudnn' needs bf16/fp16 inputs and head_dim "
                                       "<= 128"):
    fa.flash_attention(q, k, v, bias, options=cudnn_fwd)  # float32
  bf16 = lambda x: x.astype(jnp.bfloat16)  # noqa: E731
  with pytest.raises(ValueError, match="forward='cudnn' takes no attention dropout and "
                                       "needs a GPU"):
    fa.flash_attention(bf16(q), bf16(k), bf16(v), bias, options=cudnn_fwd)
  with pytest.raises(ValueError, match="forward='xla' is not 'pallas' or 'cudnn'"):
    fa.flash_attention(q, k, v, bias, options=dataclasses.replace(SMALL, forward="xla"))
  assert "power of two" in fa.unsupported_reason(24, (32,))
  assert "multiple of 16" in fa.unsupported_reason(64, (512, 120))
  assert fa.unsupported_reason(64, (512, 128)) is None


def _model_setup():
  cfg = get_config("tiny", vocab_size=97, d_model=32, head_dim=16, num_heads=2, d_ff=48,
                   num_encoder_layers=2, num_decoder_layers=2, dtype="float32")
  params = M.init_params(cfg, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  b, te, td = 3, 32, 16
  enc = rng.integers(2, 97, (b, te)).astype(np.int32)
  enc[1, 20:] = 0
  dec = rng.integers(2, 97, (b, td)).astype(np.int32)
  dec[2, 10:] = 0
  eseg = np.zeros((b, te), np.int32)
  eseg[:, :12], eseg[:, 12:26], eseg[0, 26:] = 1, 2, 3
  dseg = np.zeros((b, td), np.int32)
  dseg[:, :5], dseg[:, 5:12], dseg[0, 12:] = 1, 2, 3
  tgt = rng.integers(2, 97, (b, td)).astype(np.int32)
  return cfg, params, (enc, dec, eseg, dseg, tgt)


@pytest.mark.parametrize("packed", [False, True])
def test_model_pallas_path_matches_einsum_path(packed):
  cfg, params, (enc, dec, eseg, dseg, tgt) = _model_setup()

  def loss_and_grads(impl):
    c = cfg.replace(attention_impl=impl)

    def f(p):
      if packed:
        logits = M.T5(c).apply({"params": p}, np.where(eseg > 0, enc, 0),
                               np.where(dseg > 0, dec, 0), eseg, dseg)
        weights = (dseg > 0).astype(np.float32)
      else:
        logits = M.T5(c).apply({"params": p}, enc, dec)
        weights = (dec > 0).astype(np.float32)
      return losses.weighted_sums(logits, tgt, weights)["loss"]
    return jax.jit(jax.value_and_grad(f))(params)

  (l1, g1), (l2, g2) = loss_and_grads("pallas"), loss_and_grads("xla")
  np.testing.assert_allclose(l1, l2, rtol=1e-5)
  rel_bias = g2["encoder"]["relpos_bias"]["rel_embedding"]
  assert float(jnp.max(jnp.abs(rel_bias))) > 0
  assert_grads_close(g1, g2)


@pytest.mark.parametrize("packed", [False, True])
def test_model_pallas_path_matches_einsum_path_with_dropout(packed):
  """Both paths draw attention dropout from the kernel's hash of (seed, row, head, q, k), and
  the other dropouts from `flanjax.dropout`: the same key drops the same units on both."""
  cfg, params, (enc, dec, eseg, dseg, tgt) = _model_setup()
  cfg = cfg.replace(dropout_rate=0.2)

  def loss_fn(impl, enable_dropout=True):
    c = cfg.replace(attention_impl=impl)

    def f(p):
      kw = dict(enable_dropout=enable_dropout, rngs={"dropout": jax.random.PRNGKey(3)})
      if packed:
        logits = M.T5(c).apply({"params": p}, np.where(eseg > 0, enc, 0),
                               np.where(dseg > 0, dec, 0), eseg, dseg, **kw)
        weights = (dseg > 0).astype(np.float32)
      else:
        logits = M.T5(c).apply({"params": p}, enc, dec, **kw)
        weights = (dec > 0).astype(np.float32)
      return losses.weighted_sums(logits, tgt, weights)["loss"]
    return f

  (l1, g1) = jax.jit(jax.value_and_grad(loss_fn("pallas")))(params)
  (l2, g2) = jax.jit(jax.value_and_grad(loss_fn("xla")))(params)
  # Dropout is on: the gradients differ from the deterministic ones (the summed loss of one
  # mask may land close to the deterministic loss by chance).
  g0 = jax.jit(jax.grad(loss_fn("xla", False)))(params)
  assert not all(np.allclose(a, b, rtol=1e-2, atol=1e-4)
                 for a, b in zip(jax.tree.leaves(g2), jax.tree.leaves(g0)))
  np.testing.assert_allclose(l1, l2, rtol=1e-5)
  assert_grads_close(g1, g2)


def test_model_pallas_dropout_is_seeded():
  cfg, params, (enc, dec, eseg, dseg, tgt) = _model_setup()
  c = cfg.replace(attention_impl="pallas", dropout_rate=0.1)

  def loss(rng):
    logits = M.T5(c).apply({"params": params}, enc, dec, enable_dropout=True,
                           rngs={"dropout": rng})
    return losses.weighted_sums(logits, tgt, (dec > 0).astype(np.float32))["loss"]
  f = jax.jit(loss)
  a, b, other = f(jax.random.PRNGKey(1)), f(jax.random.PRNGKey(1)), f(jax.random.PRNGKey(2))
  assert float(a) == float(b) and float(a) != float(other)


def test_attention_impl_resolution_for_pallas():
  cfg = get_config("tiny", attention_impl="pallas")  # head_dim 64
  assert M.resolve_attention_impl(cfg, packed=True, dropout=True, lengths=(64, 32)) == "pallas"
  # lengths vary per call (evaluation pads to buckets of 8): einsum takes those
  assert M.resolve_attention_impl(cfg, packed=True, dropout=False, lengths=(64, 30)) is None
  with pytest.raises(ValueError, match="head_dim=24"):
    M.resolve_attention_impl(cfg.replace(head_dim=24), packed=False, dropout=False)
  hybrid = cfg.replace(attention_impl="cudnn_pallas")
  with pytest.raises(ValueError, match="'cudnn_pallas' cannot run this model: head_dim=24"):
    M.resolve_attention_impl(hybrid.replace(head_dim=24), packed=False, dropout=False)
  if jax.default_backend() != "gpu":  # no cuDNN: the kernel alone, in the interpreter
    assert M.resolve_attention_impl(hybrid, packed=False, dropout=False,
                                    lengths=(64,)) == "pallas"
  auto = get_config("tiny")
  on_gpu = jax.default_backend() == "gpu"
  assert M.resolve_attention_impl(auto, packed=True, dropout=False, lengths=(64, 32)) == (
      "pallas" if on_gpu else None)
  assert M.resolve_attention_impl(auto, packed=True, dropout=False, lengths=(60, 32)) is None


def test_auto_picks_pallas_for_the_decoder_and_cudnn_for_the_encoder_on_gpus(monkeypatch):
  monkeypatch.setattr(M.jax, "default_backend", lambda: "gpu")
  auto = get_config("tiny")
  # the encoder's unpacked rows: cuDNN's forward, the kernel's backward
  assert M.resolve_attention_impl(auto, packed=False, dropout=False,
                                  lengths=(64,)) == "cudnn_pallas"
  # lengths the kernel cannot take: cuDNN alone; packed rows or dropout: the kernel alone
  assert M.resolve_attention_impl(auto, packed=False, dropout=False, lengths=(60,)) == "cudnn"
  assert M.resolve_attention_impl(auto, packed=True, dropout=False, lengths=(64,)) == "pallas"
  assert M.resolve_attention_impl(auto, packed=False, dropout=True, lengths=(64,)) == "pallas"
  hybrid = auto.replace(attention_impl="cudnn_pallas")
  assert M.resolve_attention_impl(hybrid, packed=False, dropout=False,
                                  lengths=(64,)) == "cudnn_pallas"
  assert M.resolve_attention_impl(hybrid, packed=False, dropout=False, lengths=(16, 64),
                                  stack="decoder") == "pallas"
  assert M.resolve_attention_impl(auto, packed=False, dropout=False, lengths=(64, 32)) == (
      "cudnn_pallas")
  assert fa.cudnn_forward_available()  # this JAX's cuDNN module returns the statistics
  # a JAX without it: cuDNN alone for the encoder, the kernel alone for "cudnn_pallas"
  monkeypatch.setattr(fa, "cudnn_forward_available", lambda: False)
  assert M.resolve_attention_impl(auto, packed=False, dropout=False, lengths=(64,)) == "cudnn"
  assert M.resolve_attention_impl(hybrid, packed=False, dropout=False,
                                  lengths=(64,)) == "pallas"
  assert M.resolve_attention_impl(auto, packed=False, dropout=False, lengths=(16, 64),
                                  stack="decoder") == "pallas"
  # lengths the kernel cannot take: cuDNN for the decoder too; float32: einsum
  assert M.resolve_attention_impl(auto, packed=False, dropout=False, lengths=(10, 64),
                                  stack="decoder") == "cudnn"
  assert M.resolve_attention_impl(auto.replace(dtype="float32"), packed=False, dropout=False,
                                  lengths=(16, 64), stack="decoder") is None
  with pytest.raises(ValueError, match="stack="):
    M.resolve_attention_impl(auto, packed=False, dropout=False, stack="cross")


def test_sharded_kernel_matches_unsharded(python_runner):
  """Under a (data 2, model 2) mesh the kernel runs per shard (shard_map); the bias gradient
  of batch-sharded rows is summed across shards. With 3 heads (not divisible by the model
  axis) heads stay whole on every model shard, and the gradients must not be counted twice.
  Both bias-gradient modes, and kv_lengths (sharded with the batch)."""
  code = textwrap.dedent("""
      import jax, jax.numpy as jnp, numpy as np
      from jax.sharding import NamedSharding, PartitionSpec as P
      from flanjax import flash_attention as fa, partitioning
      mesh = partitioning.make_mesh((2, 2))
      for heads, axes, bias_grad, lengths in ((2, ("data", "model"), "rows", False),
                                              (2, ("data", "model"), "inplace", False),
                                              (3, ("data", None), "rows", False),
                                              (2, ("data", "model"), "rows", True)):
        opts = fa.FlashOptions(block_q=16, block_k=16, bwd_block_q=16, bwd_block_k=16,
                               bias_grad=bias_grad, interpret=True)
        ks = jax.random.split(jax.random.PRNGKey(0), 5)
        q, k, v = (jax.random.normal(kk, (4, 32, heads, 16)) for kk in ks[:3])
        bias = jax.random.normal(ks[3], (1, heads, 32, 32))
        seg = jnp.asarray(np.repeat([[1] * 20 + [2] * 12], 4, axis=0), jnp.int32)
        masks = (dict(kv_lengths=jnp.asarray([32, 20, 9, 0], jnp.int32)) if lengths
                 else dict(q_segment_ids=seg, kv_segment_ids=seg))
        def loss(q, k, v, bias, axes):
          o = fa.flash_attention(q, k, v, bias, causal=True, options=opts, mesh_axes=axes,
                                 **masks)
          return jnp.sum(o * jnp.arange(o.size).reshape(o.shape) / o.size)
        grad = jax.grad(loss, (0, 1, 2, 3))
        want = jax.jit(grad, static_argnums=4)(q, k, v, bias, None)
        with jax.set_mesh(mesh):
          sh = NamedSharding(mesh, P(*(axes[0], None, axes[1], None)))
          got = jax.jit(grad, static_argnums=4)(jax.device_put(q, sh), jax.device_put(k, sh),
                                                jax.device_put(v, sh), bias, axes)
        for a, b in zip(got, want):
          np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
      print("OK")
  """)
  assert "OK" in python_runner(code, devices=4).stdout


def test_model_pallas_path_under_a_mesh(python_runner):
  """The model's Pallas path inside the trainer's contexts (jax.set_mesh + logical axis rules):
  `layers._mesh_axes_for` maps batch/heads to the mesh, and loss and gradients match the einsum
  path on the same mesh, with dropout too (each shard draws its global rows' and heads' mask)."""
  code = textwrap.dedent(f"""
      import sys; sys.path.insert(0, {TESTS_DIR!r})
      import jax, numpy as np
      from flanjax import layers
      from mesh_models import assert_same, loss_and_grads, tiny
      cfg, params, enc, dec = tiny(d_model=32, head_dim=16, d_ff=48, enc_len=32, dec_len=16)
      eseg = np.repeat([[1] * 20 + [2] * 12], 4, axis=0).astype(np.int32)
      dseg = np.repeat([[1] * 9 + [2] * 7], 4, axis=0).astype(np.int32)
      padded = np.where(np.arange(32)[None] < np.array([[32], [25], [7], [30]]), enc, 0)
      def run(impl, packed, rate=0.0, on_mesh=True):
        def check():
          assert layers._mesh_axes_for(4, 2) == (("data", "model") if on_mesh else None)
        c = cfg.replace(attention_impl=impl, dropout_rate=rate)
        kw = dict(enable_dropout=rate > 0, rngs={{"dropout": jax.random.PRNGKey(4)}})
        # packed: segment ids; unpacked: rows with right padding (the kernel takes kv lengths)
        args = (enc, dec, eseg, dseg) if packed else (padded, dec)
        return loss_and_grads(c, params, (2, 2) if on_mesh else None, *args, check=check,
                              **kw)
      for packed, rate in ((True, 0.0), (False, 0.0), (True, 0.2)):
        want = run("xla", packed, rate)
        if rate:  # and the mesh does not change the masks
          np.testing.assert_allclose(run("xla", packed, rate, on_mesh=False)[0], want[0],
                                     rtol=1e-6)
        assert_same(run("pallas", packed, rate), want)
      print("OK")
  """)
  assert "OK" in python_runner(code, devices=4).stdout


def test_causal_with_more_keys_than_queries_and_option_checks():
  """Causal with k_len > q_len (key blocks past every query: their zero-filled bias-gradient
  blocks are clamped to the buffer) gives the reference's values; bad options are refused by
  name."""
  q, k, v, bias, w, segs = _inputs(lq=32, lk=64)
  kw = dict(causal=True)
  out, grads = _value_and_grads(fa.flash_attention, q, k, v, bias, w, segs, options=SMALL, **kw)
  ref_out, ref_grads = _value_and_grads(fa.reference_attention, q, k, v, bias, w, segs, **kw)
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
  for g, r in zip(grads, ref_grads):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(r))))
  with pytest.raises(ValueError, match="FlashOptions.block_k=48 is not a power of two"):
    fa.flash_attention(q, k, v, bias, options=dataclasses.replace(SMALL, block_k=48))
  with pytest.raises(ValueError, match="bias_grad='sum'"):
    fa.flash_attention(q, k, v, bias, options=dataclasses.replace(SMALL, bias_grad="sum"))
  with pytest.raises(ValueError, match="rows_reader='pallas' is not 'xla' or 'kernel'"):
    fa.flash_attention(q, k, v, bias, options=dataclasses.replace(SMALL, rows_reader="pallas"))
  with pytest.raises(ValueError, match="rows_block_k=24 is not a power of two >= 16"):
    fa.flash_attention(q, k, v, bias, options=dataclasses.replace(SMALL, rows_block_k=24))
  with pytest.raises(ValueError, match="bwd_warps=-1 is not a positive count"):
    fa.flash_attention(q, k, v, bias, options=dataclasses.replace(SMALL, bwd_warps=-1))
  with pytest.raises(ValueError, match="rows_stages=0 is not a positive count"):
    fa.flash_attention(q, k, v, bias, options=dataclasses.replace(SMALL, rows_stages=0))


def test_rows_reader_kernel_and_xla_agree_and_long_rows_take_xla(monkeypatch):
  """The reader kernel gives XLA's reader's gradients (same float32 sums of the same dS); rows
  longer than ROWS_KERNEL_MAX_KEYS take the XLA reader (the kernel is not called)."""
  q, k, v, bias, w, segs = _inputs(b=4, lq=32, lk=48, packed=True)
  grads = {}
  for reader in ("kernel", "xla"):
    opts = dataclasses.replace(SMALL, rows_reader=reader, rows_block_q=16, rows_block_k=16)
    grads[reader] = _value_and_grads(fa.flash_attention, q, k, v, bias, w, segs, options=opts)[1]
  for name, a, b in zip(("dq", "dk", "dv", "dbias"), grads["kernel"], grads["xla"]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)

  def no_kernel(*args, **kwargs):
    raise AssertionError("the reader kernel ran for rows longer than ROWS_KERNEL_MAX_KEYS")
  monkeypatch.setattr(fa, "_read_rows", no_kernel)
  monkeypatch.setattr(fa, "ROWS_KERNEL_MAX_KEYS", 32)
  long_grads = _value_and_grads(fa.flash_attention, q, k, v, bias, w, segs, options=SMALL)[1]
  for a, b in zip(long_grads, grads["xla"]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)



@pytest.mark.parametrize("mode", ["rows", "inplace", "dq_kernel"])
def test_launch_order_changes_no_result(mode):
  """The kernels launched block index first (`blocks_first`, default) and row index first give
  the same outputs and gradients bit for bit: only the order the programs start in differs.
  Covers the forward, dK/dV, dQ and reader kernels, row groups and the in-place bias sums
  (test_kernel_matches_reference checks the default order against the reference)."""
  q, k, v, bias, w, segs = _inputs(b=4, lq=32, lk=48, packed=True)
  # 4 rows, 2 query blocks, 3 key blocks, 2 in-place groups, 4 reader groups: a swapped
  # mapping reads or writes other blocks in every kernel
  opts = dataclasses.replace(SMALL, rows_block_q=16, rows_block_k=16, rows_groups=4,
                             bias_grad="inplace" if mode == "inplace" else "rows",
                             bias_batch_groups=2, dq_from_rows=mode != "dq_kernel")
  rng = jax.random.PRNGKey(5)
  results = {}
  for first in (True, False):
    results[first] = _value_and_grads(
        fa.flash_attention, q, k, v, bias, w, segs, dropout_rate=0.2, dropout_rng=rng,
        options=dataclasses.replace(opts, blocks_first=first))
  for name, a, b in zip(("out", "dq", "dk", "dv", "dbias"),
                        (results[True][0], *results[True][1]),
                        (results[False][0], *results[False][1])):
    np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("mode", ["qkv", "rows", "inplace", "fused"])
def test_joint_gradient_buffers_change_no_result(mode):
  """dQ, dK and dV written into one [b, s, 3, h, d] buffer (self-attention with the rows
  reader: `joint_gradients` "qkv"), dK and dV into one [b, k, 2, h, d] ("kv": other lengths,
  each bias-gradient mode, whose output index moves with it, and the bias-free one-kernel
  backward) or each into its own give the same gradients bit for bit."""
  fused = mode == "fused"
  lq = {"qkv": 48, "fused": 16}.get(mode, 32)
  q, k, v, bias, w, segs = _inputs(b=4, lq=lq, lk=48, packed=True)
  opts = dataclasses.replace(SMALL, bias_grad="inplace" if mode == "inplace" else "rows",
                             bias_batch_groups=2, rows_groups=2, joint_dq=True)
  assert fa.joint_gradients(q.shape, k.shape, not fused, opts) == ""  # (off by default)
  opts = dataclasses.replace(opts, joint_dkv=True)
  joint = fa.joint_gradients(q.shape, k.shape, not fused, opts)
  assert joint == ("qkv" if mode == "qkv" else "kv")
  assert fa.joint_gradients(q.shape, k.shape, not fused,
                            dataclasses.replace(opts, joint_dkv=False)) == ""
  rng = jax.random.PRNGKey(6)
  results = {}
  for sep in (False, True):
    results[sep] = _value_and_grads(
        fa.flash_attention, q, k, v, None if fused else bias, w, segs, dropout_rate=0.2,
        dropout_rng=rng, options=dataclasses.replace(opts, joint_dkv=not sep))
  for name, a, b in zip(("out", "dq", "dk", "dv", "dbias"),
                        (results[False][0], *results[False][1]),
                        (results[True][0], *results[True][1])):
    np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("n", [2, 3])
def test_stacked_projection_gradients_and_one_gemm_over_a_joint_buffer(n):
  """`layers.stacked_projection`'s custom backward gives autodiff's gradients, and when the
  cotangents are the slices of one [b, s, n, h, d] buffer (as the kernels write them) XLA runs
  it as two GEMMs with no concatenation: one for dx, one for every kernel."""
  from flanjax import layers
  ks = jax.random.split(jax.random.PRNGKey(7), 5)
  x = jax.random.normal(ks[0], (2, 8, 12))
  ws = tuple(jax.random.normal(kk, (12, 3, 4)) for kk in ks[1:1 + n])
  g = jax.random.normal(ks[4], (2, 8, n, 3, 4))

  def plain(x, ws):
    return tuple(jnp.einsum("bse,ehd->bshd", x, w) for w in ws)

  def grads(fn, g):
    _, vjp = jax.vjp(fn, x, ws)
    return jax.tree.leaves(vjp(tuple(g[:, :, i] for i in range(n))))

  for a, b in zip(grads(layers.stacked_projection, g), grads(plain, g)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  hlo = jax.jit(lambda g: grads(layers.stacked_projection, g)).lower(g).compile().as_text()
  assert "concatenate" not in hlo
  assert hlo.count(" dot(") == 2, hlo


def test_model_projection_gradients_take_the_kernels_buffers_without_copies():
  """On the kernel path the layer stacks exactly the cotangents that the kernel returns as one
  buffer (`joint_gradients` as `layers.kernel_options` sets it), so the compiled gradient has
  no concatenation of [b, s, n, h, d] activations: the encoder's and decoder's q/k/v (n = 3)
  and the cross-attention's k/v (n = 2). Were the layer and the kernel to disagree, XLA would
  concatenate the separate gradients. float32: on CPU, bf16 GEMMs get float32 converts between
  the slices and the stack, which keep the concatenations (the check that the search finds
  them)."""
  import re

  rng = np.random.default_rng(0)
  enc = rng.integers(2, 97, (2, 32)).astype(np.int32)
  dec = rng.integers(2, 97, (2, 16)).astype(np.int32)

  def stacked_activations(dtype):
    cfg = get_config("tiny", dtype=dtype).replace(attention_impl="pallas")
    params = M.init_params(cfg, jax.random.PRNGKey(0))

    def f(p):
      logits = M.T5(cfg).apply({"params": p}, enc, dec)
      return losses.weighted_sums(logits, dec, (dec > 0).astype(np.float32))["loss"]
    hlo = jax.jit(jax.grad(f)).lower(params).compile().as_text()
    return re.findall(rf"\[2,\d+,[23],{cfg.num_heads},{cfg.head_dim}\]\S* concatenate\(", hlo)

  assert stacked_activations("float32") == []
  assert len(stacked_activations("bfloat16")) == 6  # 2 encoder, 2 x 2 decoder layers
