"""Random initialisation follows T5X's T5 v1.1 (t5x/examples/t5 network, flaxformer's configs):
token embedding normal(1); relative position bias variance_scaling(1, fan_avg, uniform);
attention kernels variance_scaling(1, fan_in, normal), the query's divided by sqrt(head_dim);
MLP and output kernels variance_scaling(1, fan_in, truncated_normal).

Each parameter's mean square is checked against its variance within 5 standard errors: for n
i.i.d. draws of kurtosis k, the mean of w^2 has relative standard error sqrt((k - 1) / n). The
draws come from a fixed key, so the test is deterministic.
"""
import math

import jax
import numpy as np
import pytest

from flanjax import model as M
from flanjax.config import get_config

TRUNC = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def _truncated_kurtosis(c: float = 2.0) -> float:
  pdf = math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
  z = math.erf(c / math.sqrt(2))
  m2 = 1 - 2 * c * pdf / z
  m4 = 3 * m2 - 2 * c ** 3 * pdf / z
  return m4 / m2 ** 2


KURTOSIS = {"normal": 3.0, "truncated_normal": _truncated_kurtosis(), "uniform": 1.8}


def _config(**overrides):
  # head_dim * heads (128) != d_model (256) != d_ff (512) != vocab (1024): a wrong fan shows.
  return get_config("tiny", vocab_size=1024, d_model=256, d_ff=512, num_heads=8, head_dim=16,
                    num_encoder_layers=2, num_decoder_layers=2, **overrides)


def _expected(names: tuple[str, ...], shape: tuple[int, ...], cfg):
  """(distribution, variance) of T5X's initialiser for one per-layer parameter."""
  fan_in = shape[0]
  if names[-1] == "scale":
    return "ones", None
  if names[-1] == "embedding":
    return "normal", 1.0
  if names[-1] == "rel_embedding":  # [heads, buckets]
    return "uniform", 2.0 / (shape[0] + shape[1])
  layer = names[-2]
  if layer in ("wi_0", "wi_1", "wi", "wo", "logits_dense"):
    return "truncated_normal", 1.0 / fan_in
  if layer == "query":
    return "normal", 1.0 / (fan_in * cfg.head_dim)
  if layer in ("key", "value", "out"):
    return "normal", 1.0 / fan_in
  raise AssertionError(f"no expected initialiser for {names}")


def _per_layer(params):
  """(names, per-layer array) for every parameter; a scanned stack gives one per layer."""
  for path, x in jax.tree_util.tree_flatten_with_path(params)[0]:
    names = tuple(k.key for k in path)
    x = np.asarray(x, np.float64)
    if "layers" in names:  # scanned: [layers, ...]
      for i in range(x.shape[0]):
        yield names + (f"[{i}]",), x[i]
    else:
      yield names, x


def _check(names, w, cfg):
  key = tuple(n for n in names if not n.startswith("["))
  dist, var = _expected(key, w.shape, cfg)
  if dist == "ones":
    np.testing.assert_array_equal(w, 1.0)
    return
  n = w.size
  tol = 5 * math.sqrt((KURTOSIS[dist] - 1) / n)
  ms = float(np.mean(w ** 2))
  assert abs(ms / var - 1) < tol, (names, w.shape, dist, ms, var, tol)
  top = float(np.max(np.abs(w)))
  if dist == "uniform":
    limit = math.sqrt(3 * var)
    assert 0.9 * limit < top <= limit * (1 + 1e-6), (names, top, limit)
  elif dist == "truncated_normal":
    stddev = math.sqrt(var) / TRUNC
    assert 1.9 * stddev < top <= 2 * stddev * (1 + 1e-6), (names, top, stddev)
  else:  # untruncated: >= 32k draws reach well past 2 stddev of the truncated one
    assert top > 3 * math.sqrt(var), (names, top, var)


@pytest.mark.parametrize("scan_layers,ff", [(False, "gated-gelu"), (True, "gated-gelu"),
                                            (False, "relu")])
def test_init_follows_t5x(scan_layers, ff):
  cfg = _config(scan_layers=scan_layers, feed_forward_proj=ff,
                tie_word_embeddings=ff == "relu")
  params = M.init_params(cfg, jax.random.PRNGKey(0))
  seen = set()
  for names, w in _per_layer(params):
    assert w.ndim in (1, 2), (names, w.shape)  # per-layer shapes, the layer axis dropped
    _check(names, w, cfg)
    seen.update(names)
  mlp = {"wi_0", "wi_1", "wo"} if ff == "gated-gelu" else {"wi", "wo"}
  logits = set() if ff == "relu" else {"logits_dense"}
  assert {"query", "key", "value", "out", "rel_embedding", "embedding"} | mlp | logits <= seen


def test_scanned_init_gives_each_layer_its_own_draws():
  params = M.init_params(_config(scan_layers=True), jax.random.PRNGKey(0))
  wi = np.asarray(params["encoder"]["layers"]["mlp"]["wi_0"]["kernel"])  # [layers, embed, mlp]
  assert not np.allclose(wi[0], wi[1])
