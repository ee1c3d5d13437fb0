"""flanjax.dropout: hashed dropout masks, and the model's one PRNG draw per layer."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flanjax import dropout
from flanjax import model as M
from flanjax.config import get_config


def _seed(i):
  return dropout.seed_from_key(jax.random.PRNGKey(i))


def test_keep_mask_rate_determinism_and_independence():
  shape, rate = (64, 1, 1024), 0.1
  a = np.asarray(dropout.keep_mask(_seed(0), shape, rate))
  n = a.size
  assert a.shape == shape and a.dtype == bool
  sigma = np.sqrt(rate * (1 - rate) / n)
  assert abs(a.mean() - (1 - rate)) < 5 * sigma
  np.testing.assert_array_equal(a, dropout.keep_mask(_seed(0), shape, rate))
  # Other seeds and other sites of one seed: independent masks (agreement p^2 + (1-p)^2).
  p = 1 - rate
  for b in (dropout.keep_mask(_seed(1), shape, rate),
            dropout.keep_mask(dropout.site_seed(_seed(0), 1), shape, rate),
            dropout.keep_mask(dropout.site_seed(_seed(0), 2), shape, rate)):
    agree = float(np.mean(a == np.asarray(b)))
    expected = p * p + (1 - p) * (1 - p)
    assert abs(agree - expected) < 5 * np.sqrt(expected * (1 - expected) / n), agree
  # Neighbouring elements are not correlated (the index is hashed before the seed).
  flat = a.reshape(-1).astype(np.float64)
  corr = np.corrcoef(flat[:-1], flat[1:])[0, 1]
  assert abs(corr) < 5 / np.sqrt(n)
  # Every rate is honoured, not just 0.1.
  for r in (0.05, 0.5, 0.9):
    m = np.asarray(dropout.keep_mask(_seed(3), (256, 1024), r))
    assert abs(m.mean() - (1 - r)) < 5 * np.sqrt(r * (1 - r) / m.size), r


def test_apply_matches_inverted_dropout_semantics():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 6, 32)), jnp.float32)
  seed = _seed(0)
  assert dropout.apply(x, 0.3, None, site=0) is x  # no seed: identity (evaluation)
  assert dropout.apply(x, 0.0, seed, site=0) is x
  np.testing.assert_array_equal(dropout.apply(x, 1.0, seed, site=0), np.zeros(x.shape))
  with pytest.raises(ValueError, match=r"dropout rate must be in \[0, 1\]"):
    dropout.apply(x, 1.5, seed, site=0)
  y = np.asarray(dropout.apply(x, 0.3, seed, site=0))
  kept = y != 0
  np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / 0.7, rtol=1e-6)
  assert 0 < kept.mean() < 1
  assert not np.array_equal(y, np.asarray(dropout.apply(x, 0.3, seed, site=1)))  # other site
  shared = np.asarray(dropout.apply(x, 0.5, seed, site=0, broadcast_dims=(-2,)))
  np.testing.assert_array_equal(shared != 0, np.broadcast_to((shared != 0)[:, :1], x.shape))
  assert not np.array_equal(shared[0] != 0, shared[1] != 0)  # rows get their own masks
  # bf16 inputs stay bf16
  assert dropout.apply(x.astype(jnp.bfloat16), 0.3, seed, site=0).dtype == jnp.bfloat16


def test_keep_mask_is_the_same_under_any_sharding(python_runner):
  python_runner("""
import jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from flanjax import dropout
mesh = Mesh(np.array(jax.devices()).reshape(2, 2), ("data", "model"))
seed = dropout.seed_from_key(jax.random.PRNGKey(7))
f = lambda s: dropout.keep_mask(s, (8, 1, 64), 0.2)
plain = np.asarray(jax.jit(f)(seed))
for spec in (P("data", None, "model"), P(None, None, "data"), P(("data", "model"))):
  out = jax.jit(f, out_shardings=NamedSharding(mesh, spec))(seed)
  assert len(out.sharding.device_set) > 1
  np.testing.assert_array_equal(np.asarray(out), plain)
print("ok")
""", devices=4)


_DRAWS = ("random_fold_in", "random_split", "random_bits")  # each a threefry computation


def _count_draws(jaxpr) -> int:
  n = 0
  for eqn in jaxpr.eqns:
    n += eqn.primitive.name in _DRAWS
    for v in eqn.params.values():
      for sub in (v if isinstance(v, (tuple, list)) else (v,)):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          n += _count_draws(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          n += _count_draws(sub)
  return n


@pytest.mark.parametrize("scan", [False, True])
def test_model_draws_one_prng_key_per_layer(scan):
  """Each layer folds one `make_rng` key; its 4-6 dropout sites hash it (no threefry each)."""
  cfg = get_config("tiny", vocab_size=64, dropout_rate=0.1, dtype="float32",
                   num_encoder_layers=3, num_decoder_layers=2, scan_layers=scan)
  params = M.init_params(cfg, jax.random.PRNGKey(0))
  enc = np.full((2, 16), 5, np.int32)
  dec = np.full((2, 8), 6, np.int32)

  def f(rng):
    return M.T5(cfg).apply({"params": params}, enc, dec, enable_dropout=True,
                           rngs={"dropout": rng})
  jaxpr = jax.make_jaxpr(f)(jax.random.PRNGKey(1)).jaxpr
  draws = _count_draws(jaxpr)
  # unscanned: a fold-in per layer (3 + 2) and per stack (2); scanned: one split and one
  # fold-in in each stack's loop body, and the stacks' fold-ins
  assert draws == (7 if not scan else 6), draws
  out1, out2 = jax.jit(f)(jax.random.PRNGKey(1)), jax.jit(f)(jax.random.PRNGKey(2))
  assert not np.allclose(out1, out2)
  np.testing.assert_array_equal(out1, jax.jit(f)(jax.random.PRNGKey(1)))
