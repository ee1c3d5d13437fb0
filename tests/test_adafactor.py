"""flanjax.adafactor: the fused reductions against jnp, and the update and state against
optax.adafactor (kernels in Pallas' interpreter on CPU)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flanjax import adafactor as fa
from flanjax.errors import FlanjaxError
from flanjax.optimizers import OptimizerConfig, make_optimizer

from test_optimizers import LAYERED, _run_layered


def _normal(seed, shape, scale=1.0):
  return jax.random.normal(jax.random.PRNGKey(seed), shape) * scale


@pytest.mark.parametrize("shape", [(256, 384), (72, 96)])
def test_square_sums_read_once(shape):
  """Row and column sums of g^2 and the sum of p^2 (float32), tiles of 64 x 128 or smaller."""
  g, p = _normal(0, shape), _normal(1, shape)
  rows, cols, p_sq = fa.square_sums(g, p, interpret=True)
  np.testing.assert_allclose(rows, jnp.sum(g * g, axis=1), rtol=1e-5)
  np.testing.assert_allclose(cols, jnp.sum(g * g, axis=0), rtol=1e-5)
  np.testing.assert_allclose(p_sq, jnp.sum(p * p), rtol=1e-5)
  assert fa.square_sums(g, interpret=True)[2] is None
  f0, f1 = 0.5 + _normal(2, shape[:1]) ** 2, 0.5 + _normal(3, shape[1:]) ** 2
  np.testing.assert_allclose(fa.scaled_square_sum(g, f0, f1, interpret=True),
                             jnp.sum((g * f0[:, None] * f1[None, :]) ** 2), rtol=1e-5)


def test_kernels_under_vmap():
  """`optimizers.per_layer` vmaps the update over a layer stack: the kernels batch."""
  g, p = _normal(0, (3, 128, 256)), _normal(1, (3, 128, 256))
  rows, cols, p_sq = jax.vmap(lambda g, p: fa.square_sums(g, p, interpret=True))(g, p)
  np.testing.assert_allclose(rows, jnp.sum(g * g, axis=2), rtol=1e-5)
  np.testing.assert_allclose(cols, jnp.sum(g * g, axis=1), rtol=1e-5)
  np.testing.assert_allclose(p_sq, jnp.sum(p * p, axis=(1, 2)), rtol=1e-5)


def test_which_matrices_the_kernels_take():
  assert fa.kernels_apply((2816, 1024)) and fa.kernels_apply((32128, 768))
  assert not fa.kernels_apply((200, 136))  # 136 columns: tiles of 8 (XLA's reductions)
  assert not fa.kernels_apply((4, 128, 256))  # 3-D
  assert fa.factored_dims((256, 384), True, 128) == (0, 1)
  assert fa.factored_dims((384, 256), True, 128) == (1, 0)
  assert fa.factored_dims((64, 512), True, 128) is None  # second dim below the minimum
  assert fa.factored_dims((512,), True, 128) is None


PARAMS = {
    "wide": _normal(1, (256, 384), 0.05),  # factored: rows kept, columns reduced
    "tall": _normal(2, (384, 256), 0.05),  # factored the other way
    "square": _normal(3, (256, 256), 0.05),
    "narrow": _normal(4, (64, 512), 0.05),  # not factored (64 < 128)
    "vector": 1.0 + _normal(5, (512,), 0.1),
    "odd": _normal(6, (200, 136), 0.05),  # factored, XLA's reductions (tiles too small)
    "cube": _normal(7, (2, 256, 128), 0.05),  # factored 3-D: XLA's reductions
    "zero_rows": _normal(8, (128, 256), 0.05).at[:5].set(0.0),  # eps keeps the factors finite
}


@pytest.mark.parametrize("learning_rate", [1e-2, lambda count: 1e-2 * (count + 1.0)],
                         ids=["constant", "schedule"])
@pytest.mark.parametrize("options", [{}, {"clipping_threshold": None},
                                     {"multiply_by_parameter_scale": False},
                                     {"decay_rate": 0.5, "min_dim_size_to_factor": 64}],
                         ids=["t5", "no_clip", "no_param_scale", "other_decay"])
def test_updates_and_state_match_optax(learning_rate, options):
  """Three steps: the updates and every state leaf equal optax.adafactor's up to float32
  summation order; the state has optax's structure (checkpoints move between the two)."""
  ref = optax.adafactor(learning_rate, **options)
  mine = fa.adafactor(learning_rate, impl="interpret", **options)
  s_ref, s_mine = ref.init(PARAMS), mine.init(PARAMS)
  p_ref = p_mine = PARAMS
  for step in range(3):
    grads = jax.tree.map(lambda x, s=step: jnp.sin(x * 7.0 * (s + 1)) * 1e-2, PARAMS)
    grads["zero_rows"] = grads["zero_rows"].at[:5].set(0.0)
    u_ref, s_ref = jax.jit(ref.update)(grads, s_ref, p_ref)
    u_mine, s_mine = jax.jit(mine.update)(grads, s_mine, p_mine)
    assert jax.tree.structure(s_mine) == jax.tree.structure(s_ref)
    for a, b in zip(jax.tree.leaves((u_mine, s_mine)), jax.tree.leaves((u_ref, s_ref))):
      assert a.shape == b.shape and a.dtype == b.dtype
      np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-9)
    p_ref, p_mine = optax.apply_updates(p_ref, u_ref), optax.apply_updates(p_mine, u_mine)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(p_mine))


def test_stacked_layers_match_optax():
  """Through `make_optimizer` (layer stacks vmapped by `per_layer`): the kernels' updates and
  state equal optax's, and a state from one continues under the other."""
  kernels = make_optimizer(OptimizerConfig(adafactor_impl="interpret"))[0]
  reference = make_optimizer(OptimizerConfig(adafactor_impl="optax"))[0]
  got, got_state = _run_layered(kernels, LAYERED)
  want, want_state = _run_layered(reference, LAYERED)
  assert jax.tree.structure(got_state) == jax.tree.structure(want_state)
  for a, b in zip(jax.tree.leaves((got, got_state)), jax.tree.leaves((want, want_state))):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-9)
  grads = jax.tree.map(lambda x: jnp.cos(x) * 1e-2, LAYERED)
  u1, _ = jax.jit(kernels.update)(grads, want_state, want)
  u2, _ = jax.jit(reference.update)(grads, want_state, want)
  for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-9)


def test_auto_is_optax_off_gpu_and_bad_settings_are_named():
  """'auto' on CPU runs optax's update itself (bitwise); bad settings fail early."""
  auto = fa.adafactor(1e-2)
  ref = optax.adafactor(1e-2)
  grads = jax.tree.map(lambda x: x * 0.1, PARAMS)
  s = ref.init(PARAMS)
  for a, b in zip(jax.tree.leaves(auto.update(grads, s, PARAMS)),
                  jax.tree.leaves(ref.update(grads, s, PARAMS))):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(FlanjaxError, match="adafactor_impl='fast'"):
    OptimizerConfig(adafactor_impl="fast")
  with pytest.raises(FlanjaxError, match="impl='fast'"):
    fa.adafactor(1e-2, impl="fast")
  with pytest.raises(FlanjaxError, match="clipping_threshold=0.5"):
    fa.adafactor(1e-2, clipping_threshold=0.5)
  with pytest.raises(FlanjaxError, match="needs the params"):
    fa.adafactor(1e-2, impl="interpret").update(grads, s)
