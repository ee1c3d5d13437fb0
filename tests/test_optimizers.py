"""Adafactor T5 defaults, AdamW, schedules, frozen parameters."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flanjax.errors import FlanjaxError
from flanjax.optimizers import OptimizerConfig, make_optimizer, make_schedule, trainable_mask

PARAMS = {"encoder": {"w": jnp.ones((256, 192)) * 0.1, "b": jnp.ones((8,))},
          "decoder": {"w": jnp.ones((130, 4)) * -0.2}}


def _grads(seed):
  leaves, tree = jax.tree.flatten(PARAMS)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])


def _apply(tx, steps=3):
  params, state = PARAMS, tx.init(PARAMS)
  for i in range(steps):
    updates, state = tx.update(_grads(i), state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def test_adafactor_has_t5_defaults():
  tx, _ = make_optimizer(OptimizerConfig(learning_rate=1e-3))
  ref = optax.adafactor(learning_rate=1e-3, min_dim_size_to_factor=128, decay_rate=0.8,
                        multiply_by_parameter_scale=True, clipping_threshold=1.0,
                        momentum=None, factored=True)
  got, state = _apply(tx)
  want, _ = _apply(ref)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(a, b)
  # Factored second moments for the 256x192 matrix: row and column statistics, no full matrix.
  shapes = sorted(x.shape for x in jax.tree.leaves(state))
  assert (256,) in shapes and (192,) in shapes and (256, 192) not in shapes


def test_adamw():
  tx, _ = make_optimizer(OptimizerConfig(name="adamw", learning_rate=1e-2, weight_decay=0.1))
  ref = optax.adamw(1e-2, weight_decay=0.1)
  got, _ = _apply(tx)
  want, _ = _apply(ref)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_schedules():
  const = make_schedule(OptimizerConfig(learning_rate=0.1, warmup_steps=4))
  np.testing.assert_allclose([float(const(s)) for s in range(6)],
                             [0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rtol=1e-6)
  rsqrt = make_schedule(OptimizerConfig(learning_rate=0.01, schedule="rsqrt", warmup_steps=100))
  assert float(rsqrt(99)) == pytest.approx(0.01)
  assert float(rsqrt(399)) == pytest.approx(0.01 * (100 / 400) ** 0.5, rel=1e-6)
  assert float(rsqrt(9)) == pytest.approx(0.001)
  cos = make_schedule(OptimizerConfig(learning_rate=1.0, schedule="cosine", warmup_steps=10,
                                      end_learning_rate=0.1), num_steps=110)
  assert float(cos(9)) == pytest.approx(1.0)
  assert float(cos(59)) == pytest.approx(0.55, rel=1e-5)
  assert float(cos(109)) == pytest.approx(0.1, rel=1e-5)
  lin = make_schedule(OptimizerConfig(learning_rate=1.0, schedule="linear", decay_steps=11,
                                      warmup_steps=1))
  assert float(lin(5)) == pytest.approx(0.5, rel=1e-6)
  with pytest.raises(FlanjaxError, match="decay_steps"):
    make_schedule(OptimizerConfig(schedule="cosine"))
  with pytest.raises(FlanjaxError, match="schedule='cosin'"):
    OptimizerConfig(schedule="cosin")


def test_frozen_params_get_no_update():
  tx, _ = make_optimizer(OptimizerConfig(name="adamw"), params=PARAMS, trainable="decoder/.*")
  got, _ = _apply(tx)
  np.testing.assert_array_equal(got["encoder"]["w"], PARAMS["encoder"]["w"])
  assert not np.array_equal(got["decoder"]["w"], PARAMS["decoder"]["w"])
  mask = trainable_mask(PARAMS, lambda name: name.endswith("/b"))
  assert mask == {"encoder": {"w": False, "b": True}, "decoder": {"w": False}}
  with pytest.raises(FlanjaxError, match="matches no parameter"):
    trainable_mask(PARAMS, "nothing/.*")
