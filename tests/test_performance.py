"""The performance paths of flanjax.layers compute the same function as their plain versions."""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flanjax import layers
from flanjax.config import get_config

HIGHEST = jax.lax.Precision.HIGHEST


def _onehot_bias(rel_embedding, q_pos, k_pos, bidirectional, cfg):
  """The reference: buckets -> one-hot -> matmul (T5X's formulation), float32 HIGHEST."""
  rel = k_pos[:, None, :] - q_pos[:, :, None]
  buckets = layers.relative_position_bucket(rel, bidirectional,
                                            cfg.relative_attention_num_buckets,
                                            cfg.relative_attention_max_distance)
  onehot = jax.nn.one_hot(buckets, cfg.relative_attention_num_buckets, dtype=jnp.float32)
  return jnp.einsum("hn,bqkn->bhqk", rel_embedding, onehot, precision=HIGHEST)


def test_diagonal_sums_match_brute_force():
  g = np.random.default_rng(0).normal(size=(3, 5, 7)).astype(np.float32)
  want = np.zeros((3, 5 + 7 - 1), np.float32)
  for q in range(5):
    for k in range(7):
      want[:, k - q + 4] += g[:, q, k]
  np.testing.assert_allclose(layers._diagonal_sums(jnp.asarray(g)), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("q_len,k_len", [(9, 9), (4, 13), (130, 70)])
def test_relative_bias_paths_match_one_hot_reference(bidirectional, q_len, k_len):
  cfg = get_config("tiny", relative_attention_max_distance=64)
  module = layers.RelativePositionBiases(cfg, bidirectional=bidirectional)
  rng = np.random.default_rng(q_len * 7 + k_len)
  q_pos = jnp.arange(q_len, dtype=jnp.int32)[None]
  k_pos = jnp.arange(k_len, dtype=jnp.int32)[None]
  params = nn.unbox(module.init(jax.random.PRNGKey(0), q_pos, k_pos))
  rel = params["params"]["rel_embedding"]
  weight = jnp.asarray(rng.normal(size=(1, cfg.num_heads, q_len, k_len)), jnp.float32)

  def loss(fn):
    return lambda r: jnp.sum(fn(r) * weight)
  ref_fn = lambda r: _onehot_bias(r, q_pos, k_pos, bidirectional, cfg)
  static_fn = lambda r: module.apply({"params": {"rel_embedding": r}}, q_len, k_len,
                                     method=layers.RelativePositionBiases.for_lengths)
  general_fn = lambda r: module.apply({"params": {"rel_embedding": r}}, q_pos, k_pos)
  with jax.default_matmul_precision("highest"):
    ref_v, ref_g = jax.value_and_grad(loss(ref_fn))(rel)
    for fn in (static_fn, general_fn):
      np.testing.assert_allclose(fn(rel), ref_fn(rel), rtol=1e-6, atol=1e-6)
      v, g = jax.value_and_grad(loss(fn))(rel)
      np.testing.assert_allclose(v, ref_v, rtol=1e-5)
      np.testing.assert_allclose(g, ref_g, rtol=1e-5, atol=1e-5)


def test_relative_bias_general_path_takes_per_example_positions():
  cfg = get_config("tiny")
  module = layers.RelativePositionBiases(cfg, bidirectional=True)
  pos = jnp.asarray([[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]], jnp.int32)
  params = nn.unbox(module.init(jax.random.PRNGKey(1), pos, pos))
  got = module.apply(params, pos, pos)  # [2, heads, 5, 5]
  want = _onehot_bias(params["params"]["rel_embedding"], pos, pos, True, cfg)
  assert got.shape == (2, cfg.num_heads, 5, 5)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_dot_fp32_out_gradients():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 5, 16)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(16, 40)), jnp.float32)
  t = jnp.asarray(rng.normal(size=(2, 5, 40)), jnp.float32)
  ref = lambda x, w: jnp.sum(jnp.dot(x, w, precision=HIGHEST) * t)
  got = lambda x, w: jnp.sum(layers.dot_fp32_out(x, w) * t)
  with jax.default_matmul_precision("highest"):
    # float32 operands: exact.
    for a, b in zip(jax.grad(ref, (0, 1))(x, w), jax.grad(got, (0, 1))(x, w)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # bf16 operands: float32 output; gradients within bf16 rounding of the reference.
    xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    assert layers.dot_fp32_out(xb, wb).dtype == jnp.float32
    gx, gw = jax.grad(got, (0, 1))(xb, wb)
    assert gx.dtype == gw.dtype == jnp.bfloat16
    rx, rw = jax.grad(ref, (0, 1))(xb.astype(jnp.float32), wb.astype(jnp.float32))
    for a, b in ((gx, rx), (gw, rw)):
      err = np.linalg.norm(np.asarray(a, np.float32) - b) / np.linalg.norm(b)
      assert err < 1e-2, err


def test_logits_layer_uses_bf16_backward_matmuls():
  """No float32 matmul over the [tokens, vocab] gradient in the output layer's backward."""
  cfg = get_config("tiny", vocab_size=256)
  dense = layers.Dense(cfg.vocab_size, ("embed", "vocab"), cfg, fp32_out=True)
  x = jnp.ones((2, 3, cfg.d_model), jnp.bfloat16)
  params = nn.unbox(dense.init(jax.random.PRNGKey(0), x))
  f = lambda p, x: jnp.sum(dense.apply(p, x) ** 2)
  text = jax.jit(jax.grad(f, argnums=(0, 1))).lower(params, x).as_text()
  dots = [ln for ln in text.splitlines() if "dot_general" in ln]
  assert len(dots) == 3, dots  # forward + two backward
  for ln in dots:
    operands = re.search(r": \((tensor<[^>]*>), (tensor<[^>]*>)\)", ln).groups()
    assert all("bf16" in o for o in operands), ln
