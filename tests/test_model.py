"""T5 model: HF parity (v1.1 and v1.0), packing, logical axes, scan/remat, fused attention."""
import contextlib
import io
import re
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.ad_checkpoint import print_saved_residuals

from flanjax import model as M
from flanjax.config import get_config
from flanjax.convert import params_from_hf_state

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = 97


def hf_model(v11: bool, seed=0):
  """A randomly initialised tiny HF T5 (v1.1: gated-GELU, untied; v1.0: ReLU, tied)."""
  torch.manual_seed(seed)
  cfg = transformers.T5Config(
      vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3,
      num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
      dropout_rate=0.0, feed_forward_proj="gated-gelu" if v11 else "relu",
      tie_word_embeddings=not v11, decoder_start_token_id=0)
  m = transformers.T5ForConditionalGeneration(cfg).eval()
  with torch.no_grad():
    for p in m.parameters():  # larger weights than HF's init make the test more sensitive
      p.add_(0.05 * torch.randn_like(p))
    if v11:  # transformers 5 ties in memory; give v1.1 its own output layer as Flan-T5 has
      m.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, 32) * 0.2)
  return m


def flanjax_from_hf(m, v11: bool, **overrides):
  config = get_config("tiny", vocab_size=VOCAB, d_model=32, head_dim=8, d_ff=48,
                      num_encoder_layers=2, num_decoder_layers=3, num_heads=4,
                      relative_attention_num_buckets=8, relative_attention_max_distance=20,
                      feed_forward_proj="gated-gelu" if v11 else "relu",
                      tie_word_embeddings=not v11, dtype="float32", **overrides)
  state = {k: v.detach().numpy() for k, v in m.state_dict().items()}
  return config, params_from_hf_state(config, state)


def _inputs(rng, batch=3, in_len=11, tgt_len=7):
  enc = rng.integers(2, VOCAB, size=(batch, in_len)).astype(np.int32)
  enc[1, 6:] = 0  # padding
  enc[2, 9:] = 0
  dec = rng.integers(2, VOCAB, size=(batch, tgt_len)).astype(np.int32)
  dec[:, 0] = 0
  return enc, dec


@pytest.mark.parametrize("v11", [True, False])
def test_logits_match_transformers(v11):
  m = hf_model(v11)
  config, params = flanjax_from_hf(m, v11)
  enc, dec = _inputs(np.random.default_rng(0))
  with torch.no_grad():
    ref = m(input_ids=torch.tensor(enc, dtype=torch.long),
            attention_mask=torch.tensor(enc > 0, dtype=torch.long),
            decoder_input_ids=torch.tensor(dec, dtype=torch.long)).logits.numpy()
  got = np.asarray(jax.jit(M.T5(config).apply)({"params": params}, enc, dec))
  assert got.dtype == np.float32 and got.shape == ref.shape
  assert np.max(np.abs(got - ref)) <= 1e-4, np.max(np.abs(got - ref))


@pytest.mark.parametrize("v11", [True, False])
def test_loss_and_gradients_match_transformers(v11):
  """The trainer's loss and every parameter's gradient equal HF's (labels -100 where the weight
  is 0): offsets beyond max_distance in both directions (every bucket, both biases), padding,
  rows of 1 and 0 real targets."""
  from flanjax import losses
  from flanjax.convert import params_to_hf_state
  m = hf_model(v11)
  m.train()  # dropout is 0: train mode only for the gradients
  config, params = flanjax_from_hf(m, v11)
  enc, dec = _inputs(np.random.default_rng(2), batch=3, in_len=30, tgt_len=25)
  tgt = np.concatenate([dec[:, 1:], np.full((3, 1), 5, np.int32)], axis=1)
  w = np.ones(tgt.shape, np.float32)
  w[1, 1:], w[2, :] = 0, 0  # one real target; none
  labels = torch.tensor(np.where(w > 0, tgt, -100), dtype=torch.long)
  out = m(input_ids=torch.tensor(enc, dtype=torch.long),
          attention_mask=torch.tensor(enc > 0, dtype=torch.long),
          decoder_input_ids=torch.tensor(dec, dtype=torch.long), labels=labels)
  out.loss.backward()
  want = {k: p.grad.numpy() for k, p in m.named_parameters() if p.grad is not None}

  def loss_fn(p):
    sums = losses.weighted_sums(M.T5(config).apply({"params": p}, enc, dec), tgt, w)
    return sums["loss"] / losses.loss_denominator(w, "num_real_target_tokens")
  loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
  assert abs(float(loss) - out.loss.item()) <= 1e-5 * out.loss.item()
  got = params_to_hf_state(config, jax.tree.map(np.asarray, grads))
  assert set(got) == set(want)
  for name, g in got.items():
    err = np.max(np.abs(g - want[name])) / max(np.max(np.abs(want[name])), 1e-12)
    assert err <= 1e-4, (name, err)


def test_packed_equals_separate_examples():
  m = hf_model(True)
  config, params = flanjax_from_hf(m, True)
  apply = jax.jit(M.T5(config).apply)
  rng = np.random.default_rng(1)
  a_in, b_in = rng.integers(2, VOCAB, 5), rng.integers(2, VOCAB, 4)
  a_tg, b_tg = rng.integers(2, VOCAB, 3), rng.integers(2, VOCAB, 4)
  def shift(t):
    return np.concatenate([[0], t[:-1]])
  enc = np.zeros((1, 12), np.int32)
  enc[0, :9] = np.concatenate([a_in, b_in])
  enc_seg = np.array([[1] * 5 + [2] * 4 + [0] * 3], np.int32)
  enc_pos = np.array([list(range(5)) + list(range(4)) + [0] * 3], np.int32)
  dec = np.zeros((1, 9), np.int32)
  dec[0, :7] = np.concatenate([shift(a_tg), shift(b_tg)])
  dec_seg = np.array([[1] * 3 + [2] * 4 + [0] * 2], np.int32)
  dec_pos = np.array([list(range(3)) + list(range(4)) + [0] * 2], np.int32)
  packed = apply({"params": params}, enc, dec, enc_seg, dec_seg, enc_pos, dec_pos)
  la = apply({"params": params}, a_in[None], shift(a_tg)[None])
  lb = apply({"params": params}, b_in[None], shift(b_tg)[None])
  np.testing.assert_allclose(packed[0, :3], la[0], atol=1e-5)
  np.testing.assert_allclose(packed[0, 3:7], lb[0], atol=1e-5)


def test_logical_axes_cover_params():
  config = get_config("tiny")
  shapes = M.param_shapes(config)
  axes = M.param_logical_axes(config)
  flat_s = jax.tree_util.tree_leaves_with_path(shapes)
  flat_a = dict(jax.tree_util.tree_leaves_with_path(
      axes, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec)))
  assert len(flat_s) == len(flat_a)
  for path, s in flat_s:
    spec = flat_a[path]
    assert len(spec) == len(s.shape), (path, spec, s.shape)
  assert axes["token_embedder"]["embedding"] == jax.sharding.PartitionSpec("vocab", "embed")
  assert (axes["decoder"]["layers_0"]["self_attention"]["query"]["kernel"]
          == jax.sharding.PartitionSpec("embed", "joined_kv"))
  assert axes["decoder"]["relpos_bias"]["rel_embedding"] == jax.sharding.PartitionSpec(
      "heads", "relpos_buckets")
  assert s.dtype == jnp.float32
  scanned = M.param_logical_axes(config.replace(scan_layers=True))
  assert scanned["encoder"]["layers"]["mlp"]["wi_0"]["kernel"] == jax.sharding.PartitionSpec(
      "layers", "embed", "mlp")


@pytest.mark.parametrize("remat", ["none", "full",
                                   pytest.param("minimal", marks=pytest.mark.slow)])
def test_scan_layers_and_remat_same_logits(remat):
  m = hf_model(True)
  config, params = flanjax_from_hf(m, True)
  enc, dec = _inputs(np.random.default_rng(2))
  ref = jax.jit(M.T5(config).apply)({"params": params}, enc, dec)
  scfg = config.replace(scan_layers=True, remat_policy=remat)
  sparams = M.scan_params(params, scfg)
  assert sparams["encoder"]["layers"]["mlp"]["wo"]["kernel"].shape == (2, 48, 32)
  shapes = M.param_shapes(scfg)
  assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(jnp.shape, sparams)
  got = jax.jit(M.T5(scfg).apply)({"params": sparams}, enc, dec)
  np.testing.assert_allclose(got, ref, atol=1e-5)
  back = M.unscan_params(sparams, scfg)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), back, params))
  # Gradients agree too (remat must not change the maths).
  def loss(p, cfg):
    return jnp.sum(M.T5(cfg).apply({"params": p}, enc, dec) ** 2)
  g_ref = jax.jit(jax.grad(loss), static_argnums=1)(params, config)
  g = M.unscan_params(jax.jit(jax.grad(loss), static_argnums=1)(sparams, scfg), scfg)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), g, g_ref)


def test_bf16_default_runs_and_dropout_changes_outputs():
  config = get_config("tiny", vocab_size=VOCAB, dropout_rate=0.3)
  assert config.dtype == "bfloat16"
  params = M.init_params(config, jax.random.PRNGKey(0))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
  enc, dec = _inputs(np.random.default_rng(3))
  model = M.T5(config)
  apply = jax.jit(model.apply, static_argnames="enable_dropout")
  a = apply({"params": params}, enc, dec)
  b = apply({"params": params}, enc, dec)
  assert a.dtype == jnp.float32 and np.array_equal(a, b)
  c = apply({"params": params}, enc, dec, enable_dropout=True,
            rngs={"dropout": jax.random.PRNGKey(1)})
  assert not np.allclose(a, c)


def test_mlp_dropout_mask_is_shared_along_the_length():
  """T5X's MlpBlock drops the same hidden features at every position of a row
  (`broadcast_dims=(-2,)`); rows get their own masks."""
  from flanjax.layers import MlpBlock
  config = get_config("tiny", vocab_size=VOCAB, dropout_rate=0.5, dtype="float32")
  x = jnp.broadcast_to(jnp.asarray(np.random.default_rng(0).normal(size=(1, 1, config.d_model)),
                                   jnp.float32), (3, 7, config.d_model))  # same token everywhere
  mlp = MlpBlock(config, deterministic=False)
  params = mlp.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, x)
  y = mlp.apply(params, x, rngs={"dropout": jax.random.PRNGKey(2)})  # [3, 7, d]
  plain = MlpBlock(config, deterministic=True).apply(params, x)
  assert not np.allclose(y, plain)  # dropout is on
  np.testing.assert_array_equal(y, jnp.broadcast_to(y[:, :1], y.shape))  # shared along length
  assert not np.allclose(y[0], y[1])  # per row


def test_fused_attention_matches_einsum_outputs_and_grads():
  """jax.nn.dot_product_attention (xla) with the cuDNN-path arguments == the einsum path."""
  from flanjax.layers import einsum_attention, fused_attention
  rng = np.random.default_rng(4)
  b, t, s, h, d = 2, 5, 6, 3, 8
  q = jnp.asarray(rng.normal(size=(b, t, h, d)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(b, s, h, d)), jnp.float32)
  v = jnp.asarray(rng.normal(size=(b, s, h, d)), jnp.float32)
  bias = jnp.asarray(rng.normal(size=(1, h, t, s)), jnp.float32)
  lengths = jnp.array([6, 4], jnp.int32)
  for causal in (False, True):
    tt = t if not causal else s
    qq = q if not causal else jnp.asarray(rng.normal(size=(b, s, h, d)), jnp.float32)
    bb = bias if not causal else jnp.asarray(rng.normal(size=(1, h, s, s)), jnp.float32)
    mask = (jnp.arange(s)[None, :] < lengths[:, None])[:, None, None, :]  # [b, 1, 1, s]
    if causal:
      mask = mask & (jnp.arange(tt)[:, None] >= jnp.arange(s)[None, :])[None, None]

    def f_ref(qq, k, v, bb, mask=mask):
      return jnp.sum(jnp.sin(einsum_attention(qq, k, v, bb, mask)))

    def f_fused(qq, k, v, bb, causal=causal):
      return jnp.sum(jnp.sin(fused_attention(qq, k, v, bb, is_causal=causal, q_lengths=None,
                                             kv_lengths=lengths, implementation="xla")))
    np.testing.assert_allclose(f_fused(qq, k, v, bb), f_ref(qq, k, v, bb), rtol=1e-5)
    g_ref = jax.jit(jax.grad(f_ref, argnums=(0, 1, 2, 3)))(qq, k, v, bb)
    g = jax.jit(jax.grad(f_fused, argnums=(0, 1, 2, 3)))(qq, k, v, bb)
    assert float(jnp.max(jnp.abs(g_ref[3]))) > 1e-3  # the bias gradient is really there
    for a, r in zip(g, g_ref):
      np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5)


def test_attention_impl_resolution():
  cfg = get_config("tiny", attention_impl="cudnn")
  with pytest.raises(ValueError, match="does not support"):
    M.resolve_attention_impl(cfg, packed=True, dropout=False)
  assert M.resolve_attention_impl(cfg, packed=False, dropout=False) == "cudnn"
  auto = get_config("tiny")
  expect = "cudnn_pallas" if jax.default_backend() == "gpu" else None
  assert M.resolve_attention_impl(auto, packed=False, dropout=False) == expect
  assert M.resolve_attention_impl(auto, packed=True, dropout=False) is None


def test_attention_remat_same_grads_with_dropout_and_less_memory():
  """remat_policy="attention": packed rows, dropout on, same loss and gradients as "none" (the
  dropout mask is recomputed from its key), and no [b, h, q, k] scores kept for the backward."""
  config = get_config("tiny", dtype="float32", dropout_rate=0.1)
  params = M.init_params(config, jax.random.PRNGKey(0))
  rng = np.random.default_rng(5)
  b, te, td = 2, 64, 16
  enc = rng.integers(2, config.vocab_size, (b, te)).astype(np.int32)
  dec = rng.integers(2, config.vocab_size, (b, td)).astype(np.int32)
  enc_seg = np.repeat(np.array([[1] * 40 + [2] * 20 + [0] * 4]), b, axis=0).astype(np.int32)
  dec_seg = np.repeat(np.array([[1] * 10 + [2] * 6]), b, axis=0).astype(np.int32)
  enc[enc_seg == 0] = 0

  def loss(p, cfg):
    logits = M.T5(cfg).apply({"params": p}, enc, dec, enc_seg, dec_seg, enable_dropout=True,
                             rngs={"dropout": jax.random.PRNGKey(7)})
    return jnp.mean(logits ** 2)
  grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
  (l_ref, g_ref), (l_got, g_got) = grad(params, config), grad(
      params, config.replace(remat_policy="attention"))
  no_drop = jax.jit(loss, static_argnums=1)(params, config.replace(dropout_rate=0.0))
  assert abs(float(l_ref) - float(no_drop)) > 1e-6  # dropout is really on
  np.testing.assert_allclose(l_got, l_ref, rtol=1e-6)
  jax.tree.map(lambda a, r: np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6), g_got, g_ref)

  def score_residuals(cfg):  # [b, h, te, te] tensors kept for the backward pass
    with contextlib.redirect_stdout(io.StringIO()) as out:
      print_saved_residuals(lambda p: loss(p, cfg), params)
    shape = f"[{b},{config.num_heads},{te},{te}]"
    return [ln for ln in out.getvalue().splitlines() if shape in ln]
  assert len(score_residuals(config)) >= config.num_encoder_layers
  assert score_residuals(config.replace(remat_policy="attention")) == []


def test_gated_gelu_keeps_only_its_inputs_for_the_backward():
  """Without layer remat the feed-forward keeps gate and lin, not gelu(gate) (NOTES row 54);
  under a layer remat it uses the plain product (the remat recomputes it anyway)."""
  from flanjax import layers
  config = get_config("tiny", dtype="float32")
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, config.d_model))

  def residual_sources(cfg):
    mlp = layers.MlpBlock(cfg)
    p = mlp.init(jax.random.PRNGKey(0), x)
    with contextlib.redirect_stdout(io.StringIO()) as out:
      print_saved_residuals(lambda p: jnp.sum(mlp.apply(p, x) ** 2), p)
    # bf16/f32[2,8,d_ff] tensors kept, by the op that made them
    return [re.sub(r".*output of (\w+).*", r"\1", ln) for ln in out.getvalue().splitlines()
            if f"[2,8,{config.d_ff}]" in ln]
  assert sorted(residual_sources(config)) == ["dot_general", "dot_general", "mul"]
  # The plain product (what a remat-ed layer uses) keeps the GELU's intermediates too.
  assert "logistic" in residual_sources(config.replace(remat_policy="full"))
  # Same values and gradients either way.
  g, lin = jax.random.normal(jax.random.PRNGKey(2), (2, 3, 7, 16))
  out = [jax.value_and_grad(lambda a, b, f=f: jnp.sum(f(a, b) ** 2), (0, 1))(g, lin)
         for f in (layers.gated_gelu, layers.gelu_product)]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), out[0], out[1])


def test_gelu_product_is_the_tanh_approximate_gelu():
  """layers.gelu_product's sigmoid form (kept out of XLA's cuBLASLt GELU epilogue, NOTES row
  116) is jax.nn.gelu(approximate=True) times lin: in float32 its values and both gradients are
  as close to a float64 evaluation of the tanh form as the tanh form's own float32 ones."""
  from flanjax import layers

  def tanh_form(a, b):
    return jax.nn.gelu(a, approximate=True) * b

  g32 = np.linspace(-12.0, 12.0, 4001, dtype=np.float32)

  def value_and_grads(f, dtype):
    g = jnp.asarray(g32, dtype)  # the same points in both precisions
    lin = jnp.cos(g)
    grads = jax.grad(lambda a, b: jnp.sum(jnp.sin(f(a, b))), (0, 1))(g, lin)
    return [np.asarray(x, np.float64) for x in (f(g, lin), *grads)]
  with jax.enable_x64(True):
    ref = value_and_grads(tanh_form, jnp.float64)
  errors = {name: [float(np.max(np.abs(x - r))) for x, r in zip(value_and_grads(f, jnp.float32),
                                                                  ref)]
            for name, f in (("tanh", tanh_form), ("sigmoid", layers.gelu_product))}
  for got, tanh_err, r in zip(errors["sigmoid"], errors["tanh"], ref):
    assert got <= 1.5 * tanh_err + 1e-7, errors
    assert got <= 1e-6 * float(np.max(np.abs(r))) + 1e-6, errors


def test_bf16_attention_logits_option():
  """float32_attention_logits=False stores the [b, h, q, k] scores in bf16 (T5X's default) and
  stays within bf16 rounding of the float32-score model; the default keeps them in float32."""
  config = get_config("tiny")  # bf16 compute
  params = M.init_params(config, jax.random.PRNGKey(2))
  enc, dec = _inputs(np.random.default_rng(6), in_len=24, tgt_len=8)
  seg_e, seg_d = (enc > 0).astype(np.int32), (dec >= 0).astype(np.int32)  # packed path
  outs, texts = {}, {}
  for f32 in (True, False):
    cfg = config.replace(float32_attention_logits=f32)
    fn = jax.jit(M.T5(cfg).apply)
    outs[f32] = np.asarray(fn({"params": params}, enc, dec, seg_e, seg_d))
    texts[f32] = fn.lower({"params": params}, enc, dec, seg_e, seg_d).as_text()
  def score_types(text):  # result types of the encoder self-attention QK^T matmuls
    pattern = rf"dot_general.*-> tensor<3x{config.num_heads}x24x24x(\w+)>"
    return set(re.findall(pattern, text))
  assert score_types(texts[True]) == {"f32"}
  assert score_types(texts[False]) == {"bf16"}
  ref = np.abs(outs[True]).max()
  assert 0 < np.abs(outs[False] - outs[True]).max() <= 0.05 * ref


def test_model_and_trainer_modules_import_without_tensorflow(python_runner):
  """The GPU machines have JAX but no TensorFlow: the model, trainer and benchmark side must
  import and run with tensorflow / seqio / tfds unimportable (docs/design.md's boundary)."""
  code = textwrap.dedent("""
      import sys
      for name in ("tensorflow", "tensorflow_datasets", "seqio", "tensorflow_text"):
        sys.modules[name] = None  # any import of these raises ImportError
      import importlib
      for m in ("config", "dropout", "rms_norm", "layers", "flash_attention", "model", "decoding", "convert",
                "partitioning", "optimizers", "losses", "flops", "synthetic", "checkpoints",
                "summaries", "distributed", "train", "metrics", "gin_config", "cli"):
        importlib.import_module("flanjax." + m)
      import jax, jax.numpy as jnp
      from flanjax import model
      from flanjax.config import get_config
      cfg = get_config("tiny", dtype="float32")
      params = model.init_params(cfg, jax.random.PRNGKey(0))
      out = model.T5(cfg).apply({"params": params}, jnp.ones((1, 8), jnp.int32),
                                jnp.ones((1, 4), jnp.int32))
      assert out.shape == (1, 4, cfg.vocab_size)
      print("OK")
  """)
  assert "OK" in python_runner(code).stdout
