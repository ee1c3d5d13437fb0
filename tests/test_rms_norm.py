"""flanjax.rms_norm: the fused RMS norm kernels (Pallas' interpreter on CPU) against jnp."""
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_grads_close
from mesh_models import TESTS_DIR

from flanjax import layers, losses
from flanjax import model as M
from flanjax import rms_norm as R
from flanjax.config import get_config


def _loss(norm, w, w2):
  """A loss reading y and the residual stream, so both cotangents reach the norm."""
  def f(x, s):
    xr, y = norm(x, s)
    return (jnp.sum(y.astype(jnp.float32) * w)
            + jnp.sum(jnp.sin(xr.astype(jnp.float32)) * w2))
  return f


@pytest.mark.parametrize("shape,dtype", [((3, 5, 24), jnp.float32),  # d not a power of two
                                         ((2, 300, 32), jnp.float32),  # rows past one block
                                         ((4, 6, 40), jnp.bfloat16)])
def test_kernel_matches_reference_values_and_gradients(shape, dtype):
  rng = np.random.default_rng(0)
  d = shape[-1]
  x = jnp.asarray(rng.normal(size=shape) * 3, dtype)
  s = jnp.asarray(1 + 0.3 * rng.normal(size=(d,)), jnp.float32)
  w = jnp.asarray(rng.normal(size=shape), jnp.float32)
  w2 = jnp.asarray(rng.normal(size=shape), jnp.float32)
  ref = _loss(lambda x, s: (x, R.reference(x, s, 1e-6)), w, w2)
  fused = _loss(lambda x, s: R.rms_norm(x, s, 1e-6, with_residual=True), w, w2)
  plain = _loss(lambda x, s: (x, R.rms_norm(x, s, 1e-6)), w, w2)
  bwd_only = _loss(lambda x, s: R.rms_norm(x, s, 1e-6, with_residual=True, fused_forward=False),
                   w, w2)
  for fused_forward in (True, False):
    y = R.rms_norm(x, s, 1e-6, fused_forward=fused_forward)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(np.asarray(y, np.float32),
                               np.asarray(R.reference(x, s, 1e-6), np.float32),
                               rtol=1e-6 if dtype == jnp.float32 else 8e-3, atol=1e-6)
  l0, (gx0, gs0) = jax.value_and_grad(ref, argnums=(0, 1))(x, s)
  for f in (fused, plain, bwd_only):
    l1, (gx1, gs1) = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(x, s)
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    tol = 1e-5 if dtype == jnp.float32 else 2e-2  # bf16: one rounding of dx (XLA: two)
    np.testing.assert_allclose(np.asarray(gx1, np.float32), np.asarray(gx0, np.float32),
                               rtol=tol, atol=tol * float(jnp.max(jnp.abs(gx0))))
    np.testing.assert_allclose(gs1, gs0, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(gs0))))


def test_backward_programs_loop_over_several_row_blocks(monkeypatch):
  """Fewer backward programs than row blocks: each walks its blocks (grid-stride) and sums its
  partial scale gradient over them."""
  monkeypatch.setattr(R, "_BWD_PROGRAMS", 3)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(1400, 24)), jnp.float32)  # 11 blocks of 128 rows
  s = jnp.asarray(1 + 0.3 * rng.normal(size=(24,)), jnp.float32)
  w, w2 = (jnp.asarray(rng.normal(size=x.shape), jnp.float32) for _ in range(2))
  ref = _loss(lambda x, s: (x, R.reference(x, s, 1e-6)), w, w2)
  fused = _loss(lambda x, s: R.rms_norm(x, s, 1e-6, with_residual=True), w, w2)
  _, (gx0, gs0) = jax.value_and_grad(ref, argnums=(0, 1))(x, s)
  _, (gx1, gs1) = jax.jit(jax.value_and_grad(fused, argnums=(0, 1)))(x, s)
  np.testing.assert_allclose(gx1, gx0, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(gx0))))
  np.testing.assert_allclose(gs1, gs0, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(gs0))))


def test_bad_scale_and_config_are_refused():
  with pytest.raises(ValueError, match=r"scale must be \[8\]"):
    R.rms_norm(jnp.ones((2, 8)), jnp.ones((4,)), 1e-6)
  with pytest.raises(ValueError, match="T5Config.norm_impl='fast'"):
    get_config("tiny", norm_impl="fast")
  with pytest.raises(ValueError, match=r"T5Config.dropout_rate=1.0: must be in \[0, 1\)"):
    get_config("tiny", dropout_rate=1.0)


@pytest.mark.parametrize("layout", ["unscanned", "scanned_remat"])
def test_model_norm_impls_agree_in_loss_and_every_gradient(layout):
  extra = {"scan_layers": True, "remat_policy": "full"} if layout == "scanned_remat" else {}
  cfg = get_config("tiny", vocab_size=97, d_model=24, head_dim=8, num_heads=2, d_ff=40,
                   num_encoder_layers=2, num_decoder_layers=2, dtype="float32",
                   dropout_rate=0.1, **extra)
  params = M.init_params(cfg, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  enc = rng.integers(2, 97, (3, 16)).astype(np.int32)
  dec = rng.integers(2, 97, (3, 8)).astype(np.int32)

  def run(impl):
    c = cfg.replace(norm_impl=impl)

    def f(p):
      logits = M.T5(c).apply({"params": p}, enc, dec, enable_dropout=True,
                             rngs={"dropout": jax.random.PRNGKey(1)})
      return losses.weighted_sums(logits, dec, np.ones(dec.shape, np.float32))["loss"]
    return jax.jit(jax.value_and_grad(f))(params)

  x = jnp.ones((2, 24), jnp.float32)
  assert cfg.norm_impl == "auto" and jax.default_backend() == "cpu"
  assert layers._pallas_norm_axes(cfg, x) is None  # "auto" off GPUs: XLA
  assert layers._pallas_norm_axes(cfg.replace(norm_impl="xla"), x) is None
  for impl in ("pallas", "pallas_backward"):
    assert layers._pallas_norm_axes(cfg.replace(norm_impl=impl), x) == ()
  l0, g0 = run("xla")
  for impl in ("pallas", "pallas_backward"):
    l1, g1 = run(impl)
    np.testing.assert_allclose(l1, l0, rtol=1e-6)
    assert_grads_close(g1, g0)


def test_auto_picks_the_backward_kernel_on_gpus(monkeypatch):
  """"auto" resolves by backend: on a GPU the fused backward with XLA's forward."""
  cfg = get_config("tiny", dtype="float32")
  calls = []
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(layers, "_pallas_norm",
                      lambda *a, fused_forward: calls.append(fused_forward) or a[0])
  x = jnp.ones((2, 3, cfg.d_model), jnp.float32)
  assert layers._pallas_norm_axes(cfg, x) == ()
  layers.LayerNorm(cfg).init(jax.random.PRNGKey(0), x)
  layers.LayerNorm(cfg.replace(norm_impl="pallas")).init(jax.random.PRNGKey(0), x)
  assert calls == [False, True]


def test_norm_under_a_data_parallel_mesh_and_fallback(python_runner):
  """Under a data-parallel mesh the kernel runs per batch shard (the scale's gradient summed
  across them); on a (data, model) mesh, where rows are not split over every device, the
  layer falls back to XLA. Both agree with XLA on loss and gradients."""
  code = textwrap.dedent(f"""
      import sys; sys.path.insert(0, {TESTS_DIR!r})
      import jax.numpy as jnp
      from flanjax import layers
      from mesh_models import assert_same, loss_and_grads, tiny
      cfg, params, enc, dec = tiny(d_model=24, head_dim=8, d_ff=40, enc_len=16, dec_len=8)
      def run(impl, mesh_shape, expect_axes):
        def check():
          assert layers.kernel_batch_axes(jnp.ones((4, 16, 24))) == expect_axes
        return loss_and_grads(cfg.replace(norm_impl=impl), params, mesh_shape, enc, dec,
                              check=check)
      for mesh_shape, axes in (((4, 1), ("data",)), ((2, 2), None)):
        want = run("xla", mesh_shape, axes)
        for impl in ("pallas", "pallas_backward"):
          assert_same(run(impl, mesh_shape, axes), want, loss_rtol=1e-6)
      print("OK")
  """)
  assert "OK" in python_runner(code, devices=4).stdout
