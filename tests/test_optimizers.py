"""Adafactor T5 defaults, AdamW, schedules, frozen parameters."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flanjax.errors import FlanjaxError
from flanjax.optimizers import (
  OptimizerConfig,
  adafactor,
  make_optimizer,
  make_schedule,
  per_layer,
  scale_by_param_rms,
  trainable_mask,
)

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


def _reduce_sums_over(fn, x):
  """How many reduce_sum ops of fn's jaxpr read an array of x's shape."""
  jaxpr = jax.make_jaxpr(fn)(x)
  return sum(e.primitive.name == "reduce_sum" and e.invars[0].aval.shape == x.shape
             for e in jaxpr.eqns)


def test_parameter_scale_reads_each_param_once():
  """scale_by_param_rms = optax.scale_by_param_block_rms (also below the minimum scale and at
  zero), with one reduction of the param where optax's has two."""
  params = {"w": jnp.linspace(-1.0, 2.0, 96).reshape(8, 12), "tiny": jnp.full((5,), 1e-4),
            "zero": jnp.zeros((3, 4))}
  updates = jax.tree.map(lambda p: jnp.cos(p) + 0.5, params)
  ours, ref = scale_by_param_rms(), optax.scale_by_param_block_rms()
  got = ours.update(updates, ours.init(params), params)[0]
  want = ref.update(updates, ref.init(params), params)[0]
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(a, b)
  w, u = params["w"], updates["w"]
  assert _reduce_sums_over(lambda p: ours.update(u, None, p)[0], w) == 1
  assert _reduce_sums_over(lambda p: ref.update(u, None, p)[0], w) == 2


@pytest.mark.parametrize("options", [
    {}, {"clipping_threshold": None}, {"multiply_by_parameter_scale": False},
    {"momentum": 0.9}, {"factored": False, "decay_rate": 0.5, "min_dim_size_to_factor": 64}])
def test_adafactor_is_optax_adafactor(options):
  """`optimizers.adafactor` gives optax.adafactor's updates and state (same structure and
  types: checkpoints move between the two) for each setting, with a schedule."""
  cfg = OptimizerConfig(learning_rate=1e-2, warmup_steps=2, **options)
  schedule = make_schedule(cfg)
  ours = adafactor(cfg, schedule)
  ref = optax.adafactor(
      learning_rate=schedule, min_dim_size_to_factor=cfg.min_dim_size_to_factor,
      decay_rate=cfg.decay_rate, multiply_by_parameter_scale=cfg.multiply_by_parameter_scale,
      clipping_threshold=cfg.clipping_threshold, momentum=cfg.momentum, factored=cfg.factored)
  got, got_state = _apply(ours)
  want, want_state = _apply(ref)
  assert jax.tree.structure(got_state) == jax.tree.structure(want_state)
  for a, b in zip(jax.tree.leaves((got, got_state)), jax.tree.leaves((want, want_state))):
    np.testing.assert_array_equal(a, b)


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
  # A regex names whole paths or whole subtrees: layers_1 is not layers_10's prefix.
  layers = {f"layers_{i}": {"w": 0.0} for i in (1, 10, 11)}
  assert trainable_mask({"encoder": layers}, "encoder/layers_1") == {
      "encoder": {"layers_1": {"w": True}, "layers_10": {"w": False}, "layers_11": {"w": False}}}
  assert trainable_mask(PARAMS, "decoder") == trainable_mask(PARAMS, "decoder/.*")
  with pytest.raises(FlanjaxError, match="matches no parameter"):
    trainable_mask(PARAMS, "deco")


def _layer(seed, scale=1.0):
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  return {"mlp": {"kernel": jax.random.normal(k1, (256, 160)) * 0.05 * scale},
          "norm": {"scale": 1.0 + 0.1 * jax.random.normal(k2, (8,))}}


LAYERED = {"encoder": {f"layers_{i}": _layer(i, 1 + i) for i in range(3)} | {"norm": jnp.ones(8)},
           "decoder": {f"layers_{i}": _layer(10 + i) for i in range(2)},
           "embedding": jnp.ones((300, 16)) * 0.1}


def _scanned(tree):
  out = dict(tree)
  for name in ("encoder", "decoder"):
    sub = dict(tree[name])
    n = sum(k.startswith("layers_") for k in sub)
    layers = [sub.pop(f"layers_{i}") for i in range(n)]
    sub["layers"] = jax.tree.map(lambda *xs: jnp.stack(xs), *layers)
    out[name] = sub
  return out


def _run_layered(tx, params, steps=3, layout=lambda t: t):
  state = tx.init(params)
  for i in range(steps):
    leaves, tree = jax.tree.flatten(LAYERED)
    keys = jax.random.split(jax.random.PRNGKey(100 + i), len(leaves))
    grads = layout(jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) * (1 + j)
                                             for j, (k, x) in enumerate(zip(keys, leaves))]))
    updates, state = jax.jit(tx.update)(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


@pytest.mark.parametrize("name", ["adafactor", "adamw"])
def test_stacked_layers_give_the_per_leaf_updates(name):
  """optimizers.per_layer: one batched update per layer stack = one update per layer leaf. A
  scanned stack is left as one leaf (its block RMS per layer: the test below)."""
  per_leaf = make_optimizer(OptimizerConfig(name=name, stacked_layers=False))[0]
  stacked = make_optimizer(OptimizerConfig(name=name))[0]
  want, want_state = _run_layered(per_leaf, LAYERED)
  got, got_state = _run_layered(stacked, LAYERED)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # float32 rounding
  assert len(jax.tree.leaves(got_state)) < len(jax.tree.leaves(want_state))
  got_scanned, _ = _run_layered(stacked, _scanned(LAYERED), layout=_scanned)
  want_scanned, _ = _run_layered(per_leaf, _scanned(LAYERED), layout=_scanned)
  for a, b in zip(jax.tree.leaves(got_scanned), jax.tree.leaves(want_scanned)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["adafactor", "adamw"])
def test_a_scanned_stack_gets_the_updates_of_its_layers_unscanned(name):
  """scanned_block_rms="layer" (the default): Adafactor's update clipping and parameter scale
  reduce each layer of a scanned stack on its own (T5X's `layers` factor rule), so a scanned
  model's updates equal the unscanned model's (its layers' weights differ in size here, 1x to
  3x, so "stack", one block RMS over the whole stack, does not)."""
  cfg = OptimizerConfig(name=name)
  assert cfg.scanned_block_rms == "layer"
  unscanned, _ = _run_layered(make_optimizer(cfg, params=LAYERED)[0], LAYERED)
  tx = make_optimizer(cfg, params=_scanned(LAYERED))[0]  # as train() builds it
  scanned, _ = _run_layered(tx, _scanned(LAYERED), layout=_scanned)
  for a, b in zip(jax.tree.leaves(scanned), jax.tree.leaves(_scanned(unscanned))):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # float32 rounding
  with pytest.raises(FlanjaxError, match=r"scanned_block_rms='layers': use 'stack' or 'layer'"):
    OptimizerConfig(scanned_block_rms="layers")
  if name == "adafactor":  # "stack", one block RMS over the whole stack: other updates
    whole_cfg = OptimizerConfig(scanned_block_rms="stack")
    whole, _ = _run_layered(make_optimizer(whole_cfg, params=_scanned(LAYERED))[0],
                            _scanned(LAYERED), layout=_scanned)
    assert not all(np.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(
        jax.tree.leaves(whole), jax.tree.leaves(_scanned(unscanned))))


@pytest.mark.parametrize("group_size", [1, 2])
def test_layer_groups_give_the_whole_stack_updates(group_size):
  """per_layer(group_size=G): each stack's layers updated G at a time (3 encoder layers: an
  uneven split at G=2) give the updates and state of the whole stack at once, bit for bit."""
  inner = optax.adafactor(1e-2, min_dim_size_to_factor=4)
  want, want_state = _run_layered(per_layer(inner), LAYERED)
  got, got_state = _run_layered(per_layer(inner, group_size=group_size), LAYERED)
  for a, b in zip(jax.tree.leaves((got, got_state)), jax.tree.leaves((want, want_state))):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(FlanjaxError, match=r"per_layer\(group_size=0\): use a positive"):
    per_layer(inner, group_size=0)


@pytest.mark.parametrize("trainable", ["decoder/.*", "encoder/layers_1/.*"])
def test_stacked_layers_with_frozen_params(trainable):
  """Frozen stacks or uneven per-layer freezing (then one leaf at a time): same updates."""
  per_leaf = make_optimizer(OptimizerConfig(stacked_layers=False), params=LAYERED,
                            trainable=trainable)[0]
  stacked = make_optimizer(OptimizerConfig(), params=LAYERED, trainable=trainable)[0]
  want, _ = _run_layered(per_leaf, LAYERED)
  got, _ = _run_layered(stacked, LAYERED)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # float32 rounding
  mask = trainable_mask(LAYERED, trainable)
  for a, b, m in zip(jax.tree.leaves(got), jax.tree.leaves(LAYERED), jax.tree.leaves(mask)):
    assert np.array_equal(a, b) != m


def test_stacked_optimizer_state_follows_the_param_shardings():
  from flanjax import model as model_lib
  from flanjax import partitioning
  from flanjax.config import get_config
  from flanjax.train import opt_state_shardings, param_shardings
  config = get_config("tiny", vocab_size=128, d_model=128, d_ff=256)  # factored (>= 128)
  shapes = model_lib.param_shapes(config)
  mesh = partitioning.make_mesh((1, 1))
  p_shard = param_shardings(config, mesh, partitioning.STANDARD_LOGICAL_AXIS_RULES, shapes)
  tx, _ = make_optimizer(OptimizerConfig(), params=shapes)
  abstract = jax.eval_shape(tx.init, shapes)
  o_shard = opt_state_shardings(abstract, shapes, p_shard, mesh)
  n, f = config.num_encoder_layers, config.d_ff
  specs = {(tuple(x.shape), s.spec) for x, s in zip(jax.tree.leaves(abstract),
                                                     jax.tree.leaves(o_shard))}
  # wi_0's kernel [d, f] is P(None, "model"): its stacked column statistics [n, f] keep "model"
  assert ((n, f), jax.sharding.PartitionSpec(None, "model")) in specs
  assert all(len(s) <= len(shape) for shape, s in specs)


def test_optimizer_config_checks_its_field_types():
  """A quoted number ('1e-3') or a float step count is a clear error, before any comparison
  (which raised TypeError), on every path that builds an OptimizerConfig (heldout, the API);
  built by gin, the message names the binding (tests/test_gin.py)."""
  with pytest.raises(FlanjaxError, match=r"^OptimizerConfig.learning_rate='1e-3' must be a "
                                         r"number\.$"):
    OptimizerConfig(learning_rate="1e-3")
  with pytest.raises(FlanjaxError, match=r"^OptimizerConfig.warmup_steps=1.5 must be an "
                                         r"integer\.$"):
    OptimizerConfig(warmup_steps=1.5)
  with pytest.raises(FlanjaxError, match=r"^OptimizerConfig.stacked_layers=1 must be True or "
                                         r"False\.$"):
    OptimizerConfig(stacked_layers=1)
  with pytest.raises(FlanjaxError, match=r"^OptimizerConfig.decay_steps='10' must be an integer "
                                         r"or None\.$"):
    OptimizerConfig(decay_steps="10")
  with pytest.raises(FlanjaxError, match=r"^OptimizerConfig.clipping_threshold=True must be a "
                                         r"number or None\.$"):
    OptimizerConfig(clipping_threshold=True)
  with pytest.raises(FlanjaxError, match=r"^OptimizerConfig.name=3 must be a string\.$"):
    OptimizerConfig(name=3)
  cfg = OptimizerConfig(learning_rate=np.float32(1e-3), warmup_steps=np.int64(10),
                        clipping_threshold=None, momentum=0.9)
  assert cfg.momentum == 0.9
