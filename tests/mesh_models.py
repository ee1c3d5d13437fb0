"""A tiny T5 run under a device mesh, shared by the tests that need several fake CPU devices and
so run in a subprocess (tests/test_rms_norm.py, tests/test_flash_attention.py). Such a
subprocess imports this module after `sys.path.insert(0, TESTS_DIR)`."""
from __future__ import annotations

import os

import flax.linen as nn
import jax
import numpy as np

from flanjax import losses, partitioning
from flanjax import model as M
from flanjax.config import get_config

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def tiny(d_model: int, head_dim: int, d_ff: int, enc_len: int, dec_len: int, batch: int = 4):
  """(config, params, encoder tokens [batch, enc_len], decoder tokens [batch, dec_len]): a
  float32 one-layer T5 with two heads and a 97-token vocabulary."""
  cfg = get_config("tiny", vocab_size=97, d_model=d_model, head_dim=head_dim, num_heads=2,
                   d_ff=d_ff, num_encoder_layers=1, num_decoder_layers=1, dtype="float32")
  params = M.init_params(cfg, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  enc = rng.integers(2, 97, (batch, enc_len)).astype(np.int32)
  dec = rng.integers(2, 97, (batch, dec_len)).astype(np.int32)
  return cfg, params, enc, dec


def loss_and_grads(cfg, params, mesh_shape, *inputs, check=None, **apply_kw):
  """Jitted loss and parameter gradients of `T5(cfg)` on `inputs` (encoder tokens, decoder
  tokens, then e.g. segment ids) under a mesh of `mesh_shape` with the standard logical axis
  rules (None: no mesh and no rules); `check()` runs inside the traced function (assertions on
  what the layers see there)."""
  dec = inputs[1]

  def f(p):
    if check is not None:
      check()
    logits = M.T5(cfg).apply({"params": p}, *inputs, **apply_kw)
    return losses.weighted_sums(logits, dec, np.ones(dec.shape, np.float32))["loss"]
  step = jax.jit(jax.value_and_grad(f))
  if mesh_shape is None:
    return step(params)
  with jax.set_mesh(partitioning.make_mesh(mesh_shape)), \
       nn.logical_axis_rules(partitioning.STANDARD_LOGICAL_AXIS_RULES):
    return step(params)


def assert_same(got, want, loss_rtol: float = 1e-5):
  """(loss, grads) pairs agree: the loss to `loss_rtol`, every gradient leaf to 1e-4 relative
  plus 1e-5 of its largest entry."""
  np.testing.assert_allclose(got[0], want[0], rtol=loss_rtol)
  for a, b in zip(jax.tree.leaves(got[1]), jax.tree.leaves(want[1])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()) + 1e-7)
