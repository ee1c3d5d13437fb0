"""Cross entropy with z-loss and label smoothing against direct formulas; normalisers."""
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flanjax import losses
from flanjax.errors import FlanjaxError


def _ref(logits, targets, z_loss, ls):
  """Direct float64 formula: -sum_v q_v log softmax_v + z_loss log(Z)^2 - H(q)."""
  logits = np.asarray(logits, np.float64)
  v = logits.shape[-1]
  log_z = np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1)) + logits.max(-1)
  logp = logits - log_z[..., None]
  q = np.full(logits.shape, ls / (v - 1))
  np.put_along_axis(q, targets[..., None], 1.0 - ls, axis=-1)
  ent = -np.sum(np.where(q > 0, q * np.log(np.maximum(q, 1e-300)), 0.0), -1)
  return -np.sum(q * logp, -1) - ent + z_loss * log_z ** 2, z_loss * log_z ** 2


@pytest.mark.parametrize("z_loss,ls", [(0.0, 0.0), (1e-4, 0.0), (1e-4, 0.1), (0.0, 0.3)])
def test_cross_entropy_matches_reference(z_loss, ls):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 5, 11)).astype(np.float32) * 3
  targets = rng.integers(0, 11, size=(3, 5))
  loss, zl = losses.cross_entropy_with_logits(jnp.asarray(logits), jnp.asarray(targets),
                                              z_loss=z_loss, label_smoothing=ls)
  want, want_z = _ref(logits, targets, z_loss, ls)
  np.testing.assert_allclose(loss, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(zl, want_z, rtol=1e-5, atol=1e-7)


def test_perfect_prediction_has_zero_smoothed_loss():
  v, ls = 7, 0.2
  q = np.full((1, 1, v), ls / (v - 1))
  q[0, 0, 3] = 1 - ls
  loss, _ = losses.cross_entropy_with_logits(jnp.log(jnp.asarray(q, jnp.float32)),
                                             jnp.asarray([[3]]), label_smoothing=ls)
  assert abs(float(loss[0, 0])) < 1e-5


def test_weighted_sums_and_normalisers():
  logits = jnp.asarray([[[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]])
  targets = jnp.asarray([[0, 2, 2]])
  weights = jnp.asarray([[1, 1, 0]])
  s = losses.weighted_sums(logits, targets, weights)
  assert float(s["weight"]) == 2.0
  assert float(s["correct"]) == 1.0  # the padded (weight 0) correct token does not count
  per_tok, _ = losses.cross_entropy_with_logits(logits, targets)
  assert float(s["loss"]) == pytest.approx(float(per_tok[0, 0] + per_tok[0, 1]), rel=1e-6)
  assert float(losses.loss_denominator(weights, "num_real_target_tokens")) == 2.0
  assert float(losses.loss_denominator(weights, "num_total_target_tokens")) == 3.0
  assert float(losses.loss_denominator(weights, 512.0)) == 512.0
  with pytest.raises(FlanjaxError, match="loss_normalizer='tokens'"):
    losses.loss_denominator(weights, "tokens")


def test_z_loss_gradient_pushes_log_z_to_zero():
  logits = jnp.full((1, 1, 4), 3.0)
  g = jax.grad(lambda x: losses.cross_entropy_with_logits(x, jnp.asarray([[0]]), z_loss=1.0)[1]
               .sum())(logits)
  assert np.all(np.asarray(g) > 0)  # lowering every logit lowers log Z


def _autodiff_ce(logits, targets, z_loss, ls):
  """The loss written plainly in jnp, differentiated by autodiff (the custom VJP's reference)."""
  v = logits.shape[-1]
  log_z = jax.nn.logsumexp(logits, axis=-1)
  logp = logits - log_z[..., None]
  q = jnp.where(jax.nn.one_hot(targets, v) > 0, 1.0 - ls, ls / (v - 1))
  zl = z_loss * log_z ** 2
  return -jnp.sum(q * logp, -1) + zl, zl


@pytest.mark.parametrize("z_loss,ls", [(0.0, 0.0), (1e-4, 0.0), (1e-4, 0.1), (0.3, 0.2)])
def test_cross_entropy_gradient_matches_autodiff(z_loss, ls):
  """The hand-written backward (one elementwise pass) against autodiff of the plain formula,
  with different cotangents on (loss + z_loss) and z_loss, as the trainer's sums give them."""
  rng = np.random.default_rng(1)
  logits = jnp.asarray(rng.normal(size=(2, 6, 13)).astype(np.float32) * 3)
  targets = jnp.asarray(rng.integers(0, 13, size=(2, 6)))
  w1 = jnp.asarray(rng.uniform(size=(2, 6)).astype(np.float32))
  w2 = jnp.asarray(rng.uniform(size=(2, 6)).astype(np.float32))

  def objective(fn):
    def f(x):
      loss, zl = fn(x)
      return jnp.sum(loss * w1) + jnp.sum(zl * w2)
    return f

  got = jax.grad(objective(lambda x: losses.cross_entropy_with_logits(
      x, targets, z_loss=z_loss, label_smoothing=ls)))(logits)
  want = jax.grad(objective(lambda x: _autodiff_ce(x, targets, z_loss, ls)))(logits)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # and the values, through the same reference
  loss, zl = losses.cross_entropy_with_logits(logits, targets, z_loss=z_loss, label_smoothing=ls)
  want_loss, want_zl = _ref(np.asarray(logits), np.asarray(targets), z_loss, ls)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(zl, want_zl, rtol=1e-5, atol=1e-7)


def test_cross_entropy_gradient_in_bf16_logits_and_under_jit():
  """bf16 logits (cast to float32 inside) give a bf16 gradient equal to the float32 one."""
  rng = np.random.default_rng(2)
  logits = jnp.asarray(rng.normal(size=(2, 3, 9)), jnp.bfloat16)
  targets = jnp.asarray(rng.integers(0, 9, size=(2, 3)))
  f = jax.jit(jax.grad(lambda x: losses.cross_entropy_with_logits(x, targets, z_loss=1e-4)[0]
                       .sum()))
  g = f(logits)
  assert g.dtype == jnp.bfloat16
  want = jax.grad(lambda x: _autodiff_ce(x, targets, 1e-4, 0.0)[0].sum())(
      logits.astype(jnp.float32))
  np.testing.assert_allclose(np.asarray(g, np.float32), want, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("kw,match", [({"label_smoothing": 1.0}, "label_smoothing=1.0"),
                                      ({"label_smoothing": -0.1}, "label_smoothing=-0.1"),
                                      ({"z_loss": -1.0}, "z_loss=-1.0")])
def test_cross_entropy_rejects_bad_settings(kw, match):
  with pytest.raises(FlanjaxError, match=match):
    losses.cross_entropy_with_logits(jnp.zeros((1, 1, 3)), jnp.zeros((1, 1), jnp.int32), **kw)


def test_cross_entropy_gradient_is_as_accurate_as_autodiff():
  """The one-pass backward forms the softmax from the forward's max and sum, as autodiff of
  logsumexp does: exp(x - log Z) carried log Z's rounding into every entry (max error 4.6e-7
  here against autodiff's 1.5e-7 and today's 1.9e-7, from a float64 reference)."""
  rng = np.random.default_rng(0)
  logits = (rng.normal(size=(64, 16, 500)) * 4).astype(np.float32)
  targets = rng.integers(0, 500, size=(64, 16))
  w = rng.uniform(size=(64, 16)).astype(np.float32)
  x = logits.astype(np.float64)
  p = np.exp(x - x.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  np.put_along_axis(p, targets[..., None], np.take_along_axis(p, targets[..., None], -1) - 1, -1)
  want = p * w[..., None]
  got = jax.grad(lambda v: jnp.sum(losses.cross_entropy_with_logits(
      v, jnp.asarray(targets))[0] * w))(jnp.asarray(logits))
  assert np.max(np.abs(np.asarray(got, np.float64) - want)) < 3e-7


# ------------------------------------------------------------ the statistics kernel (interpreter)


def test_row_statistics_kernel_matches_jnp():
  """One read of the logits gives XLA's max, sum of exponentials, target logit, first argmax and
  sum: rows not a multiple of the block, a vocabulary not a multiple of the chunk, ties inside
  one chunk and across chunks (the first index wins, as jnp.argmax), a row of -inf, a negative
  target (from the end) and out-of-range ones (NaN, as take_along_axis). Pallas' interpreter
  here; on a GPU the same kernel is compared with XLA by bench/probe_loss.py."""
  import dataclasses
  rng = np.random.default_rng(0)
  x = rng.normal(size=(7, 300)).astype(np.float32) * 3
  x[3, [250, 17, 20]] = x[3].max() + 1.0  # 17 and 20 share a chunk, 250 is in a later one
  x[5] = -np.inf
  t = rng.integers(0, 300, 7).astype(np.int32)
  t[1], t[2], t[6] = -1, 300, 1000
  opts = dataclasses.replace(losses.STATS_OPTIONS, block_rows=2, block_cols=64)
  m, s, tl, am, sl = jax.jit(lambda x, t: losses.row_statistics(x, t, opts))(x, t)
  real = np.arange(7) != 5
  np.testing.assert_array_equal(m, x.max(1))
  np.testing.assert_allclose(s[real], np.exp(x - x.max(1, keepdims=True)).sum(1)[real],
                             rtol=1e-6)
  assert s[5] == 0.0
  np.testing.assert_array_equal(tl, jnp.take_along_axis(x, t[:, None], axis=1)[:, 0])
  assert tl[1] == x[1, -1] and np.isnan(tl[2]) and np.isnan(tl[6])
  np.testing.assert_array_equal(am, np.argmax(x, 1))
  assert am[3] == 17
  np.testing.assert_allclose(sl[real], x.sum(1)[real], rtol=1e-5, atol=1e-4)
  with pytest.raises(ValueError, match="StatsOptions.block_cols=100: Triton needs a power"):
    losses.row_statistics(x, t, dataclasses.replace(opts, block_cols=100))
  empty = losses.row_statistics(jnp.zeros((0, 300)), jnp.zeros((0,), jnp.int32))
  assert [e.shape for e in empty] == [(0,)] * 5


@pytest.mark.parametrize("z_loss,ls", [(1e-4, 0.0), (1e-4, 0.1)])
def test_weighted_sums_kernel_statistics_agree_with_xla(z_loss, ls):
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, 5, 300)) * 3, jnp.float32)
  t = jnp.asarray(rng.integers(0, 300, (2, 5)), jnp.int32).at[0, 0].set(
      int(jnp.argmax(x[0, 0])))  # one correct token
  w = jnp.asarray(rng.random((2, 5)), jnp.float32)

  def run(impl):
    def f(x):
      s = losses.weighted_sums(x, t, w, z_loss=z_loss, label_smoothing=ls, stats_impl=impl)
      return s["loss"], s
    return jax.jit(jax.value_and_grad(f, has_aux=True))(x)
  # "auto": the kernel on GPUs, XLA's elsewhere
  assert losses._stats_axes(x, "auto") == (() if jax.default_backend() == "gpu" else None)
  assert losses._stats_axes(x, "pallas") == ()
  (_, want), g_want = run("xla")
  (_, got), g_got = run("pallas")
  assert float(got["correct"]) > 0.0  # the weighted correct token counts
  for k in want:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-6)
  np.testing.assert_allclose(g_got, g_want, rtol=1e-6, atol=1e-9)


def test_bad_stats_impl_is_refused():
  with pytest.raises(FlanjaxError, match="stats_impl='fast': use one of"):
    losses.weighted_sums(jnp.zeros((1, 1, 3)), jnp.zeros((1, 1), jnp.int32),
                         jnp.ones((1, 1)), stats_impl="fast")


def test_statistics_kernel_under_a_data_parallel_mesh_and_fallback(python_runner):
  """Under a data-parallel mesh the kernel runs per batch shard; on a (data, model) mesh, where
  rows are not split over every device, the loss falls back to XLA's. Both agree with XLA."""
  code = textwrap.dedent("""
      import flax.linen as nn, jax, jax.numpy as jnp, numpy as np
      from flanjax import losses, partitioning
      rng = np.random.default_rng(0)
      x = jnp.asarray(rng.normal(size=(4, 8, 40)), jnp.float32)
      t = jnp.asarray(rng.integers(0, 40, (4, 8)), jnp.int32)
      t = t.at[:, :2].set(jnp.argmax(x[:, :2], -1))  # some correct tokens on every shard
      w = jnp.ones((4, 8), jnp.float32)
      def run(impl, mesh_shape, expect_axes):
        def f(x):
          assert losses._stats_axes(x, impl) == (expect_axes if impl == "pallas" else None)
          x = nn.with_logical_constraint(x, ("batch", "length", "vocab"))
          s = losses.weighted_sums(x, t, w, z_loss=1e-4, stats_impl=impl)
          return s["loss"], s
        with jax.set_mesh(partitioning.make_mesh(mesh_shape)), \\
             nn.logical_axis_rules(partitioning.STANDARD_LOGICAL_AXIS_RULES):
          return jax.jit(jax.value_and_grad(f, has_aux=True))(x)
      for mesh_shape, axes in (((4, 1), ("data",)), ((2, 2), None)):
        (_, want), g_want = run("xla", mesh_shape, axes)
        (_, got), g_got = run("pallas", mesh_shape, axes)
        assert float(want["correct"]) > 0  # every statistic compared, the accuracy too
        for k in want:
          np.testing.assert_allclose(got[k], want[k], rtol=1e-6)
        np.testing.assert_allclose(g_got, g_want, rtol=1e-6, atol=1e-9)
      print("OK")
  """)
  assert "OK" in python_runner(code, devices=4).stdout
