"""Prototype performance variants, applied by monkeypatching flanjax before the model is built.

  python3 bench/train_throughput.py --patch bench.variants:relpos_gather ...

Each function below swaps one piece of flanjax.layers / flanjax.model / flanjax.flash_attention
for another version with the same parameter tree; bench/NOTES.md records what each was predicted
to change and what it measured. The ones that paid off (the gathered relative bias, the bf16 output-layer backward) are
now in flanjax.layers; what is left here was measured and rejected, or is a measurement only.
"""
from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flanjax import dropout, layers, model

# --------------------------------------------------------------------------- fused projections


class _Kernel(nn.Module):
  """Declares `kernel` exactly as layers.Dense does, and returns it (no matmul)."""
  features: int
  in_features: int
  axes: tuple
  config: object
  init_std: float = 1.0

  @nn.compact
  def __call__(self):
    return layers._param(self, "kernel", nn.initializers.normal(self.init_std),
                         (self.in_features, self.features), self.axes,
                         layers.dtype_of(self.config.param_dtype))


def _fused_dot(x, kernels, dtype):
  w = jnp.concatenate([k.astype(dtype) for k in kernels], axis=1)
  y = jnp.dot(x.astype(dtype), w)
  sizes = np.cumsum([k.shape[1] for k in kernels])[:-1]
  return jnp.split(y, sizes, axis=-1)


class FusedMHA(layers.MultiHeadAttention):
  """Q/K/V projections as one matmul (self-attention) or K/V as one (cross-attention)."""

  @nn.compact
  def __call__(self, x_q, x_kv, bias, mask, *, kv_lengths=None, decode_index=None,
               segments=None, dropout_seed=None):
    if segments is not None:
      raise ValueError("FusedMHA (a rejected prototype) does not take packed rows.")
    cfg = self.config
    h, d, e = cfg.num_heads, cfg.head_dim, cfg.d_model
    dtype = layers.dtype_of(cfg.dtype)
    kern = functools.partial(_Kernel, h * d, e, ("embed", "joined_kv"), cfg)
    wq = kern(init_std=(e * d) ** -0.5, name="query")()
    wk = kern(init_std=e ** -0.5, name="key")()
    wv = kern(init_std=e ** -0.5, name="value")()
    if x_q is x_kv:
      q, k, v = _fused_dot(x_q, [wq, wk, wv], dtype)
    else:
      (q,) = _fused_dot(x_q, [wq], dtype)
      k, v = _fused_dot(x_kv, [wk, wv], dtype)
    q = q.reshape(q.shape[:2] + (h, d))
    k = k.reshape(k.shape[:2] + (h, d))
    v = v.reshape(v.shape[:2] + (h, d))
    q = layers.constrain(q, ("batch", "length", "heads", "kv"))
    k = layers.constrain(k, ("batch", "length", "heads", "kv"))
    v = layers.constrain(v, ("batch", "length", "heads", "kv"))
    if self.decode:
      initialized = self.has_variable("cache", "cached_key")
      cached_key = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
      cached_value = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
      if initialized:
        start = (0, decode_index, 0, 0)
        cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, k, start)
        cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, v, start)
        k, v = cached_key.value, cached_value.value
    seed = layers.module_dropout_seed(self, self.deterministic, cfg.dropout_rate, dropout_seed)
    if self.fused_impl is not None and not self.decode:
      out = layers.fused_attention(q, k, v, bias, is_causal=self.is_causal, q_lengths=None,
                                   kv_lengths=kv_lengths, implementation=self.fused_impl)
    else:
      out = layers.einsum_attention(q, k, v, bias, mask, seed, cfg.dropout_rate)
    out = layers.constrain(out, ("batch", "length", "heads", "kv"))
    out = out.reshape(out.shape[:2] + (h * d,))
    return layers.Dense(e, ("joined_kv", "embed"), cfg, init_std=(h * d) ** -0.5, name="out")(out)


class FusedMlp(layers.MlpBlock):
  """wi_0 and wi_1 as one matmul."""

  @nn.compact
  def __call__(self, x, dropout_seed=None):
    cfg = self.config
    if not cfg.gated:
      return super().__call__(x, dropout_seed)
    dtype = layers.dtype_of(cfg.dtype)
    kern = functools.partial(_Kernel, cfg.d_ff, cfg.d_model, ("embed", "mlp"), cfg,
                             init_std=cfg.d_model ** -0.5)
    gate, lin = _fused_dot(x, [kern(name="wi_0")(), kern(name="wi_1")()], dtype)
    hidden = jax.nn.gelu(gate, approximate=True) * lin
    hidden = layers.constrain(hidden, ("batch", "length", "mlp"))
    seed = layers.module_dropout_seed(self, self.deterministic, cfg.dropout_rate, dropout_seed)
    hidden = dropout.apply(hidden, cfg.dropout_rate, seed, site=0,
                           broadcast_dims=layers.MLP_DROPOUT_BROADCAST_DIMS)
    return layers.Dense(cfg.d_model, ("mlp", "embed"), cfg, init_std=cfg.d_ff ** -0.5,
                        name="wo")(hidden)


def fused_proj():
  model.MultiHeadAttention = FusedMHA
  model.MlpBlock = FusedMlp


# --------------------------------------------------------------------------- measurements only


def _patch_bias(transform):
  """Both attention paths get `transform(bias)` for the relative bias: cuDNN's
  (`fused_attention`) and the kernel's (`pallas_attention`, the default on GPUs since session
  14; before call 150 these measurements patched only the cuDNN path)."""
  orig, orig_pallas = layers.fused_attention, layers.pallas_attention

  def fused(q, k, v, bias, **kw):
    return orig(q, k, v, transform(bias), **kw)

  def pallas(q, k, v, bias, *args, **kw):
    return orig_pallas(q, k, v, transform(bias), *args, **kw)
  layers.fused_attention, layers.pallas_attention = fused, pallas


def no_bias_grad():
  """NOT a valid optimisation (freezes the relative bias): measures what its gradient costs."""
  _patch_bias(lambda bias: None if bias is None else jax.lax.stop_gradient(bias))



# --------------------------------------------------------------------------- bf16 param copies


def _bf16_copies(params, dtype):
  """Casts kernels and the embedding (used only in `dtype` matmuls) once; norms / bias stay."""
  def cast(path, x):
    name = str(getattr(path[-1], "key", path[-1]))
    return x.astype(dtype) if name in ("kernel", "embedding") else x
  return jax.tree_util.tree_map_with_path(cast, params)


class T5Bf16Params(model.T5):
  """T5 whose `apply` casts the matmul weights to the compute dtype once per call."""

  def apply(self, variables, *args, **kwargs):
    variables = dict(variables)
    variables["params"] = _bf16_copies(variables["params"], layers.dtype_of(self.config.dtype))
    return super().apply(variables, *args, **kwargs)


def bf16_params():
  model.T5 = T5Bf16Params


# --------------------------------------------------------------------------- measurements


def no_bias():
  """NOT valid (drops the relative bias from fused attention): measures the bias's cost.
  Without a bias the encoder's backward takes the kernel's dK/dV + dQ kernels (the dQ kernel
  recomputes S), not the bias path's dS rows."""
  _patch_bias(lambda bias: None)


# --------------------------------------------------------------------------- A/B of defaults


def gelu_saved():
  """The gated GELU before NOTES row 54: XLA keeps gelu(gate) for the backward (no checkpoint)."""
  layers.gated_gelu = layers.gelu_product


def mlp_dropout_full():
  """The MLP's hidden dropout before NOTES row 76: a full [tokens, d_ff] mask (one draw per
  element) instead of T5X's mask shared along the length."""
  layers.MLP_DROPOUT_BROADCAST_DIMS = ()


def dropout_rbg():
  """A measurement only: the dropout key of the `rbg` PRNG (XLA's RngBitGenerator for the bits)
  instead of threefry, to see what threefry's dropout sites cost in compile and step time."""
  from flanjax import train
  train._dropout_key = lambda seed, step: jax.random.fold_in(
      jax.random.key(seed, impl="rbg"), step)


def no_dropout_rng():
  """A measurement only: dropout masks of all ones outside the attention kernel (the residual,
  embedding and MLP dropouts keep everything), to bound what their masks cost."""
  dropout.apply = lambda x, rate, seed, site, broadcast_dims=(): x


def kernel_padding_as_segments():
  """Unpacked rows' padding as all-ones segment ids for the Pallas kernel (before NOTES row
  63), instead of the kv lengths the model now passes."""
  orig = layers.pallas_attention

  def pallas(q, k, v, bias, segments, *, kv_lengths=None, **kw):
    if kv_lengths is not None and segments is None:
      real = jnp.arange(k.shape[1])[None, :] < kv_lengths[:, None]  # [b, k]
      segments = (jnp.ones(q.shape[:2], jnp.int32), jnp.where(real, 1, -1).astype(jnp.int32))
    return orig(q, k, v, bias, segments, **kw)
  layers.pallas_attention = pallas


def _replace_kernel_options(when=None, **fields):
  """Patches `layers.kernel_options` (the options of every attention of the model on the
  kernel: `flash_attention.options_for` plus the joint gradient buffers) to return its options
  with `fields` replaced, for the attentions where `when(q_len, k_len, causal)` holds
  (default: every one)."""
  orig = layers.kernel_options

  def kernel_options(q_len, k_len, **kw):
    opts = orig(q_len, k_len, **kw)
    if when is None or when(q_len, k_len, kw.get("causal", False)):
      opts = dataclasses.replace(opts, **fields)
    return opts
  layers.kernel_options = kernel_options


def dq_kernel():
  """dQ from the Pallas dQ kernel (before NOTES row 65) instead of one batched GEMM over the
  dS rows that the dK/dV kernel stores for the bias gradient."""
  _replace_kernel_options(dq_from_rows=False)


def rows_kernel():
  """dQ and the bias gradient from one Pallas kernel over the stored dS rows (one read)
  instead of XLA's reduction + batched GEMM (two reads). `ROWS_TILING=bq,bk,warps,groups,
  stages` in the environment overrides the kernel's default tiling (A/B runs)."""
  import os

  tiling = {}
  if os.environ.get("ROWS_TILING"):
    bq, bk, warps, groups, stages = (int(x) for x in os.environ["ROWS_TILING"].split(","))
    tiling = dict(rows_block_q=bq, rows_block_k=bk, rows_warps=warps, rows_groups=groups,
                  rows_stages=stages)
  _replace_kernel_options(rows_reader="kernel", **tiling)


def rows_xla():
  """Before NOTES row 74: dQ and the bias gradient from the stored dS rows by XLA (a reduction
  over the rows and a batched GEMM: two reads) instead of the reader kernel."""
  _replace_kernel_options(rows_reader="xla")


# --------------------------------------------------------------------------- the param norm


def param_norm_fused():
  """Before row 72: the `param_norm` metric's reduction free to fuse with the param update
  (which then wrote fresh buffers and copied them into the donated ones)."""
  import optax

  from flanjax import train
  train._param_norm = optax.tree.norm


def no_norm_metrics():
  """A measurement only (the metrics read 0): the step without its `grad_norm` and
  `param_norm` reductions, as a bound on what computing them only on logged steps saves."""
  from flanjax import train
  train._grad_norm = train._param_norm = lambda tree: jnp.zeros((), jnp.float32)


def _layer_groups(size):
  from flanjax import optimizers
  optimizers.per_layer = functools.partial(optimizers.per_layer, group_size=size)


def layer_groups_4():
  """Adafactor per group of 4 layers of a stack (`per_layer(group_size=4)`; the default updates
  all 24 at once): each of its fusions reads 4 layers' buffers through the stacking concatenate
  instead of 24, with 6x the launches."""
  _layer_groups(4)


def layer_groups_8():
  """As `layer_groups_4`, groups of 8 layers."""
  _layer_groups(8)


def layer_groups_12():
  """As `layer_groups_4`, groups of 12 layers."""
  _layer_groups(12)


def norms_of_f32_grads():
  """Before row 135: the `grad_norm` metric's `lax.cond` took the float32 gradients, so XLA
  wrote a float32 copy of every kernel gradient on every step (a conditional's operands are
  materialised), and the optimizer read those copies instead of the GEMMs' bf16 outputs."""
  from flanjax import train
  train._norm_view = lambda grads, compute_dtype: grads


def _transform_grads(fn):
  """Wraps the train step's optimizer so that it updates with `fn(grads)`."""
  import optax

  from flanjax import train
  real_make = train.make_train_step

  def make(config, tx, schedule, **kw):
    def update(grads, state, params=None):
      return tx.update(fn(grads), state, params)
    return real_make(config, optax.GradientTransformation(tx.init, update), schedule, **kw)

  train.make_train_step = make


def grads_divided():
  """Before row 133: the gradients of the summed loss, divided by the normaliser afterwards (a
  pass of its own over every gradient, which XLA materialises for the optimizer's several
  reads) instead of the gradients of the normalised loss. The metrics' loss is then the sum."""
  from flanjax import losses
  real_denominator = losses.loss_denominator
  box = {}

  def denominator_one(weights, loss_normalizer):
    box["denom"] = real_denominator(weights, loss_normalizer)  # traced, used in the same step
    return jnp.ones((), jnp.float32)

  losses.loss_denominator = denominator_one
  _transform_grads(lambda grads: jax.tree.map(lambda g: (g / box["denom"]).astype(g.dtype),
                                              grads))


def bf16_grads():
  """The layers' kernel gradients kept in bf16 between the backward pass and the optimizer: each
  is one bf16 GEMM's output (x^T dy, bf16 operands), which XLA may write in float32 (excess
  precision) for the optimizer's three reads. An optimization barrier on the bf16 values makes
  the GEMMs write bf16 and the optimizer's fusions read bf16 and upcast in registers: the same
  values that JAX's semantics (and PyTorch autocast) give, half the bytes. Embedding, norm
  scales, relative bias and the output layer keep float32 gradients (sums over many uses)."""
  from flanjax import train

  def low_then_float32(grads):
    low = jax.tree_util.tree_map_with_path(
        lambda p, g: g.astype(jnp.bfloat16) if train.unscanned_layer_kernel(p) else g, grads)
    return jax.tree.map(lambda g: g.astype(jnp.float32), jax.lax.optimization_barrier(low))

  _transform_grads(low_then_float32)


def param_rms_optax():
  """Before row 121: Adafactor's parameter scale by optax's `scale_by_param_block_rms`, which
  reduces each param twice (`optax.safe_root_mean_squares`)."""
  import optax

  from flanjax import optimizers
  optimizers.scale_by_param_rms = lambda min_scale=1e-3, scanned=False: (
      optax.scale_by_param_block_rms(min_scale))


# --------------------------------------------------------------------------- the loss


def logits_bf16():
  """The output layer's GEMM writes bf16 logits (fp32 accumulation, as T5X's and HF's T5), cast
  to float32 inside the loss's fusions, instead of float32 logits: at base b256 the [32768,
  32128] logits are 4.2 GB in float32, written once and read by each of the loss's passes."""

  @jax.custom_vjp
  def dot_bf16_out(x, w):
    return jnp.dot(x, w).astype(jnp.float32)

  def fwd(x, w):
    return dot_bf16_out(x, w), (x, w)

  dot_bf16_out.defvjp(fwd, layers._dot_fp32_out_bwd)
  layers.dot_fp32_out = dot_bf16_out


def correct_from_max():
  """The accuracy metric from the log-sum-exp's own max (target logit >= max; equal to argmax ==
  target but on exact ties) instead of a separate argmax pass over the [tokens, vocab] logits
  (NOTES row 82, before row 114's kernel, which gets the argmax in its one read: this variant
  now also swaps that kernel for XLA's passes)."""
  from flanjax import losses

  def weighted_sums(logits, targets, weights, *, z_loss=0.0, label_smoothing=0.0):
    weights = weights.astype(jnp.float32)
    logits = logits.astype(jnp.float32)
    m = jax.lax.stop_gradient(jnp.max(logits, axis=-1))  # [batch, length]
    log_z = m + jnp.log(jnp.sum(jnp.exp(logits - m[..., None]), axis=-1))
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    assert not label_smoothing
    loss = log_z - target_logit
    zl = z_loss * jnp.square(log_z)
    correct = (target_logit >= m).astype(jnp.float32)
    return {"loss": jnp.sum((loss + zl) * weights), "z_loss": jnp.sum(zl * weights),
            "correct": jnp.sum(correct * weights), "weight": jnp.sum(weights)}

  losses.weighted_sums = weighted_sums


def loss_lean():
  """Both of the above."""
  logits_bf16()
  correct_from_max()


def ce_autodiff():
  """The cross entropy before NOTES row 88: the forward of `losses._cross_entropy_fwd`
  differentiated by autodiff (a float32 softmax term, a scattered one-hot term, then the cast
  to bf16) instead of its one-pass custom VJP."""
  from flanjax import losses

  def losses_and_correct(logits, targets, z_loss, label_smoothing, stats_impl):
    logits = logits.astype(jnp.float32)
    del stats_impl  # XLA's statistics: autodiff cannot go through the Pallas kernel
    return losses._cross_entropy_fwd(logits, targets, float(z_loss), float(label_smoothing),
                                     None)[0]

  losses._losses_and_correct = losses_and_correct


def loss_xla():
  """The loss's forward statistics from XLA's passes (a max pass, then the sum of exponentials
  with the argmax; before NOTES row 114) instead of `losses.row_statistics`' one read."""
  from flanjax import losses
  losses.weighted_sums = functools.partial(losses.weighted_sums, stats_impl="xla")


# --------------------------------------------------------------------------- attention backward


def two_kernel_backward():
  """The attention backward without a bias (T5's cross-attention) as the dK/dV kernel plus the
  dQ kernel, as before `FlashOptions.fused_backward` (one kernel per row and head)."""
  _replace_kernel_options(fused_backward=False)


def cudnn_encoder():
  """The encoder's unpacked rows on cuDNN alone (`jax.nn.dot_product_attention`), as `auto`
  chose before "cudnn_pallas" (cuDNN's forward with the Pallas backward)."""
  resolve = model.resolve_attention_impl

  def patched(*args, **kwargs):
    impl = resolve(*args, **kwargs)
    return "cudnn" if impl == "cudnn_pallas" else impl

  model.resolve_attention_impl = patched


# --------------------------------------------------------------------------- launch order


def rows_first():
  """The Pallas attention kernels launched with the row index in grid x, as before session 15
  (`FlashOptions.blocks_first=False`): the programs of one (row, head) start far apart, so the
  dK/dV kernel reads q and dO from HBM once per key block."""
  _replace_kernel_options(blocks_first=False)


def encoder_opts():
  """`ENC_OPTS="bwd_warps=8,bwd_block_k=128"` in the environment: those FlashOptions fields
  (Python literals, or plain strings) for the encoder's self-attention only: as many queries
  as keys, more than 128, not causal (A/B runs)."""
  import ast
  import os

  fields = {}
  for item in os.environ.get("ENC_OPTS", "").split(","):
    if item.strip():
      name, _, value = item.partition("=")
      try:
        fields[name.strip()] = ast.literal_eval(value.strip())
      except (ValueError, SyntaxError):
        fields[name.strip()] = value.strip()
  _replace_kernel_options(lambda q_len, k_len, causal: q_len == k_len > 128 and not causal,
                          **fields)


# --------------------------------------------------------------------------- decoder attention


def _route_decoder(pick):
  """Patches `layers.pallas_attention` so that the decoder's unpacked attentions without
  dropout go where `pick(bias, causal)` says: "cudnn_forward" (cuDNN's forward, the Pallas
  backward), "cudnn" (cuDNN's forward and backward) or None (unchanged)."""
  orig = layers.pallas_attention

  def patched(q, k, v, bias, segments, *, causal, dropout_rate, dropout_seed,
              kv_lengths=None, forward="pallas", **kw):
    decoder = q.shape[1] < k.shape[1] or causal  # (the encoder: as many queries as keys)
    route = (pick(bias, causal)
             if decoder and segments is None and not dropout_rate and forward == "pallas"
             else None)
    if route == "cudnn":
      return layers.fused_attention(q, k, v, bias, is_causal=causal, q_lengths=None,
                                    kv_lengths=kv_lengths, implementation="cudnn")
    return orig(q, k, v, bias, segments, causal=causal, dropout_rate=dropout_rate,
                dropout_seed=dropout_seed, kv_lengths=kv_lengths,
                forward="cudnn" if route == "cudnn_forward" else forward, **kw)
  layers.pallas_attention = patched


def cross_cudnn_forward():
  """The decoder's cross-attention (no bias) with cuDNN's forward and the Pallas one-kernel
  backward, as the encoder's `cudnn_pallas`."""
  _route_decoder(lambda bias, causal: "cudnn_forward" if bias is None else None)


def cross_cudnn():
  """The decoder's cross-attention (no bias, so no bias gradient to lose) on cuDNN alone.
  Measured before row 107 (call 116). Since then the layer stacks the K/V cotangents for the
  kernel's joint buffer, which cuDNN does not write, so that stack is a copy here: combine with
  `separate_dkv` to compare with the kernel."""
  _route_decoder(lambda bias, causal: "cudnn" if bias is None else None)


def self_cudnn_forward():
  """The decoder's causal self-attention with cuDNN's forward, the Pallas backward."""
  _route_decoder(lambda bias, causal: "cudnn_forward" if causal else None)


def decoder_cudnn_forward():
  """Both of the decoder's attentions with cuDNN's forward and the Pallas backward."""
  _route_decoder(lambda bias, causal: "cudnn_forward")


# --------------------------------------------------------------------------- K/V gradients


def separate_dkv():
  """Before NOTES row 107: the kernels write dQ, dK and dV as separate buffers (`joint_dkv=
  False`) and autodiff differentiates the Q, K and V projections as a GEMM each, whose input
  gradients XLA then adds (one add folded into a GEMM, the rest separate)."""
  _replace_kernel_options(joint_dkv=False, joint_dq=False)


def separate_dq():
  """Call 117's code: dK and dV in one buffer, one stacked GEMM for their input gradient, but
  self-attention's dQ in its own buffer (`joint_dq=False`) with its own GEMM."""
  _replace_kernel_options(joint_dq=False)


# --------------------------------------------------------------------------- gated GELU form


def gelu_tanh():
  """The gated GELU in jax.nn.gelu's tanh form (before NOTES row 116), which XLA folds into the
  gate GEMM as cuBLASLt's GELU epilogue with an `aux` output (gelu(gate) and gate both written)
  instead of `layers.gelu_product`'s sigmoid form."""
  def gelu_product(gate, lin):
    return jax.nn.gelu(gate, approximate=True) * lin

  layers.gelu_product = gelu_product
  layers.gated_gelu = jax.checkpoint(gelu_product)


def stack_rms_scanned():
  """Before session 23: a scanned stack's Adafactor update clipping and parameter scale over the
  whole stack (one block RMS per leaf), not per layer."""
  from flanjax import optimizers
  optimizers.has_scanned_stacks = lambda tree: False


def per_layer_rms_reshape():
  """A scanned stack's per-layer block RMS as a reduction over a [L, rest] view (a reshape, no
  copy) instead of over axes 1..n of the leaf."""
  from flanjax import optimizers

  def block_rms(path, x, scanned):
    keys = [getattr(k, "key", None) for k in path]
    if scanned and x.ndim > 1 and len(keys) > 2 and keys[1] == optimizers.SCANNED_KEY:
      flat = x.reshape(x.shape[0], -1)  # [L, rest]
      rms = jnp.sqrt(jnp.mean(jnp.square(flat.astype(jnp.float32)), axis=1))  # [L]
      return rms.reshape((x.shape[0],) + (1,) * (x.ndim - 1)).astype(x.dtype)
    return jnp.sqrt(jnp.mean(jnp.square(x)))

  optimizers._block_rms = block_rms


def per_layer_rms_vmap():
  """A scanned stack's per-layer block RMS through jax.vmap over the layer axis."""
  from flanjax import optimizers

  def block_rms(path, x, scanned):
    keys = [getattr(k, "key", None) for k in path]
    if scanned and x.ndim > 1 and len(keys) > 2 and keys[1] == optimizers.SCANNED_KEY:
      rms = jax.vmap(lambda y: jnp.sqrt(jnp.mean(jnp.square(y))))(x)  # [L]
      return rms.reshape((x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.sqrt(jnp.mean(jnp.square(x)))

  optimizers._block_rms = block_rms

