"""The T5 encoder-decoder (v1.1 / Flan-T5 and v1.0) in Flax linen, with T5X parameter names.

`T5(config)(encoder_input_tokens, decoder_input_tokens, ...)` returns float32 logits
`[batch, target_len, vocab]`. Packed inputs pass `*_segment_ids` (and the `*_positions` of the
packed feature format): examples never attend across segments. The relative bias is one Toeplitz
matrix of row offsets for every row, as in T5X: inside a packed example, offsets equal position
differences (positions restart at 0 per example and count up), so the positions are not needed.
See docs/design.md for the parameter tree and the logical axis names.
"""
from __future__ import annotations

import functools
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flanjax import dropout, flash_attention
from flanjax.config import T5Config
from flanjax.layers import (
    FINAL_KERNEL_INIT,
    Dense,
    Embed,
    LayerNorm,
    MlpBlock,
    MultiHeadAttention,
    RelativePositionBiases,
    constrain,
    dtype_of,
    module_dropout_seed,
    remat_policy,
)

Array = Any
_ACT = ("batch", "length", "embed")


def resolve_attention_impl(config: T5Config, *, packed: bool, dropout: bool,
                           lengths: tuple[int, ...] = (), stack: str = "encoder") -> str | None:
  """The fused implementation to use ("cudnn", "pallas" or "cudnn_pallas") or None for the
  einsum path.

  "auto" on a GPU backend picks, for the encoder, cuDNN's forward with flanjax's Pallas
  backward ("cudnn_pallas") when both support the case (cuDNN: no packing, as per-batch
  segment masks would be folded into the bias, losing its gradient; no attention dropout; a
  16-bit compute dtype; head_dim a multiple of 8 up to 128. The kernel: head_dim a power of
  two >= 16 and `lengths`, the sequence lengths of the stack, multiples of 16), else cuDNN
  alone, else the Pallas flash attention (16-bit compute), else einsum. For the decoder
  (`stack="decoder"`) it tries the Pallas kernel first: at T5-large shapes it is faster than
  cuDNN on the decoder's short causal self-attention and its cross-attention (bench/NOTES.md
  rows 39-40). Other backends use einsum.
  `attention_impl="pallas"` uses the kernel wherever the lengths allow (einsum otherwise), on
  other backends in Pallas' interpreter (slow: for tests); "cudnn_pallas" the same, with
  cuDNN's forward where "auto" would use it on a GPU.
  """
  if stack not in ("encoder", "decoder"):
    raise ValueError(f"resolve_attention_impl: stack={stack!r}, use 'encoder' or 'decoder'.")
  impl = config.attention_impl
  if impl == "xla":
    return None
  sixteen_bit = config.dtype in ("bfloat16", "float16")  # (float32 stays exact on einsum)
  cudnn_ok = (not packed and not dropout and sixteen_bit
              and config.head_dim % 8 == 0 and config.head_dim <= 128)
  pallas_why = flash_attention.unsupported_reason(config.head_dim, lengths)
  if impl == "cudnn":
    if not cudnn_ok:
      raise ValueError(
          "attention_impl='cudnn' does not support this case (packed inputs with segment ids, "
          "attention dropout, float32 compute or head_dim not a multiple of 8 up to 128): use "
          "attention_impl='auto' (Pallas flash attention or einsum) or 'pallas'.")
    return "cudnn"
  # cuDNN's forward with the kernel's backward: unpacked encoder rows without dropout.
  hybrid_ok = (stack == "encoder" and cudnn_ok and pallas_why is None
               and flash_attention.cudnn_forward_available())
  if impl in ("pallas", "cudnn_pallas"):
    model_why = flash_attention.unsupported_reason(config.head_dim, ())
    if model_why:
      raise ValueError(f"attention_impl={impl!r} cannot run this model: {model_why}. Use "
                       "attention_impl='auto' to fall back to the einsum path automatically.")
    if impl == "cudnn_pallas" and hybrid_ok and jax.default_backend() == "gpu":
      return "cudnn_pallas"
    # Lengths vary per call (evaluation buckets, decoding): einsum takes the ones it cannot.
    return "pallas" if pallas_why is None else None
  if jax.default_backend() != "gpu":
    return None
  if stack == "decoder" and pallas_why is None and sixteen_bit:
    return "pallas"
  if hybrid_ok:
    return "cudnn_pallas"
  if cudnn_ok:
    return "cudnn"
  return "pallas" if pallas_why is None and sixteen_bit else None


def _segment_mask(q_seg: Array | None, k_seg: Array | None) -> Array | None:
  if q_seg is None or k_seg is None:
    return None
  return (q_seg[:, :, None] == k_seg[:, None, :])[:, None]  # [batch, 1, q, k]


def _kernel_segments(kv_valid: Array, q_seg: Array, kv_seg: Array):
  """Segment ids of packed rows for the Pallas kernel: (queries [b, q], keys [b, k]), padding
  keys set to -1 so that no query sees them. (Unpacked rows pass lengths instead.)"""
  return q_seg.astype(jnp.int32), jnp.where(kv_valid, kv_seg.astype(jnp.int32), -1)


def _and(*masks):
  out = None
  for m in masks:
    if m is not None:
      out = m if out is None else jnp.logical_and(out, m)
  return out


def _site(seed, site: int):
  return None if seed is None else dropout.site_seed(seed, site)


class EncoderLayer(nn.Module):
  """Pre-norm self-attention + MLP block."""
  config: T5Config
  deterministic: bool = True
  fused_impl: str | None = None
  scanned: bool = False

  @nn.compact
  def __call__(self, x, bias, mask, kv_lengths, segments):
    cfg = self.config
    seed = module_dropout_seed(self, self.deterministic, cfg.dropout_rate)
    drop = functools.partial(dropout.apply, rate=cfg.dropout_rate, seed=seed,
                             broadcast_dims=(-2,))
    x, h = LayerNorm(cfg, name="pre_attention_layer_norm")(x, with_residual=True)
    h = MultiHeadAttention(cfg, self.deterministic, fused_impl=self.fused_impl,
                           name="attention")(h, h, bias, mask, kv_lengths=kv_lengths,
                                             segments=segments, dropout_seed=_site(seed, 2))
    x = x + drop(h, site=0)
    x = constrain(x, _ACT)
    x, h = LayerNorm(cfg, name="pre_mlp_layer_norm")(x, with_residual=True)
    h = MlpBlock(cfg, self.deterministic, name="mlp")(h, dropout_seed=_site(seed, 3))
    x = x + drop(h, site=1)
    x = constrain(x, _ACT)
    return (x, None) if self.scanned else x


class DecoderLayer(nn.Module):
  """Pre-norm causal self-attention + cross-attention + MLP block."""
  config: T5Config
  deterministic: bool = True
  decode: bool = False
  fused_impl: str | None = None
  scanned: bool = False
  decode_length: int | None = None

  @nn.compact
  def __call__(self, y, encoded, self_bias, self_mask, cross_mask, enc_lengths, decode_index,
               self_segments, cross_segments):
    cfg = self.config
    seed = module_dropout_seed(self, self.deterministic, cfg.dropout_rate)
    drop = functools.partial(dropout.apply, rate=cfg.dropout_rate, seed=seed,
                             broadcast_dims=(-2,))
    y, h = LayerNorm(cfg, name="pre_self_attention_layer_norm")(y, with_residual=True)
    h = MultiHeadAttention(cfg, self.deterministic, self.decode, fused_impl=self.fused_impl,
                           is_causal=True, decode_length=self.decode_length,
                           name="self_attention")(
                               h, h, self_bias, self_mask, decode_index=decode_index,
                               segments=self_segments, dropout_seed=_site(seed, 3))
    y = y + drop(h, site=0)
    y = constrain(y, _ACT)
    y, h = LayerNorm(cfg, name="pre_cross_attention_layer_norm")(y, with_residual=True)
    h = MultiHeadAttention(cfg, self.deterministic, self.decode, fused_impl=self.fused_impl,
                           cross=True, name="encoder_decoder_attention")(
                               h, encoded, None, cross_mask, kv_lengths=enc_lengths,
                               segments=cross_segments, dropout_seed=_site(seed, 4))
    y = y + drop(h, site=1)
    y = constrain(y, _ACT)
    y, h = LayerNorm(cfg, name="pre_mlp_layer_norm")(y, with_residual=True)
    h = MlpBlock(cfg, self.deterministic, name="mlp")(h, dropout_seed=_site(seed, 5))
    y = y + drop(h, site=2)
    y = constrain(y, _ACT)
    return (y, None) if self.scanned else y


def _stack(layer_cls, config: T5Config, num_layers: int, num_args: int, **attrs):
  """Returns a function creating the layers (a list, or one nn.scan) and applying them."""
  cls = layer_cls
  if config.layer_remat:
    cls = nn.remat(cls, policy=remat_policy(config.remat_policy),
                   prevent_cse=not config.scan_layers)
  if config.scan_layers:
    scanned = nn.scan(cls, variable_axes={"params": 0, "cache": 0},
                      split_rngs={"params": True, "dropout": True},
                      in_axes=(nn.broadcast,) * num_args, length=num_layers,
                      metadata_params={nn.PARTITION_NAME: "layers"})

    def apply_scanned(x, *args):
      x, _ = scanned(config, scanned=True, name="layers", **attrs)(x, *args)
      return x
    return apply_scanned

  def apply_layers(x, *args):
    for i in range(num_layers):
      x = cls(config, name=f"layers_{i}", **attrs)(x, *args)
    return x
  return apply_layers


class Encoder(nn.Module):
  """T5 encoder stack; the embedding is shared with the decoder."""
  config: T5Config
  embedder: nn.Module

  @nn.compact
  def __call__(self, tokens, segment_ids=None, positions=None, enable_dropout=False):
    cfg = self.config
    deterministic = not enable_dropout
    seed = module_dropout_seed(self, deterministic, cfg.dropout_rate)
    x = self.embedder(tokens)  # [batch, length, embed]
    x = dropout.apply(x, cfg.dropout_rate, seed, site=0, broadcast_dims=(-2,))
    x = constrain(x, _ACT)
    impl = resolve_attention_impl(cfg, packed=segment_ids is not None,
                                  dropout=enable_dropout and cfg.dropout_rate > 0,
                                  lengths=(tokens.shape[1],))
    relpos = RelativePositionBiases(cfg, bidirectional=True, name="relpos_bias")
    valid = tokens > 0  # [batch, length]
    # Offsets within the row: inside each packed example they equal position differences, and
    # pairs across examples are masked, so one bias of batch 1 serves packed rows too (as T5X).
    bias = relpos.for_lengths(tokens.shape[1], tokens.shape[1])  # [1, heads, len, len]
    mask, kv_lengths, segments = None, None, None
    if impl in ("cudnn", "cudnn_pallas") or (impl == "pallas" and segment_ids is None):
      # Right padding (as seqio pads: a 0 before a row's last real token would be a key here,
      # padding on the einsum path).
      kv_lengths = jnp.sum(valid, axis=-1, dtype=jnp.int32)
      if impl != "pallas":  # cuDNN's backward gives non-finite gradients for a row without
        kv_lengths = jnp.maximum(kv_lengths, 1)  # keys: a row of padding keeps one (unused)
    elif impl == "pallas":  # packed: padding keys get id -1, so no query sees them
      segments = _kernel_segments(valid, segment_ids, segment_ids)
    else:
      mask = _and(valid[:, None, None, :], _segment_mask(segment_ids, segment_ids))
    x = _stack(EncoderLayer, cfg, cfg.num_encoder_layers, 4, deterministic=deterministic,
               fused_impl=impl)(x, bias, mask, kv_lengths, segments)
    x = LayerNorm(cfg, name="encoder_norm")(x)
    x = dropout.apply(x, cfg.dropout_rate, seed, site=1)  # T5X: one mask value per element here
    return constrain(x, _ACT)


class Decoder(nn.Module):
  """T5 decoder stack with the output layer (tied or `logits_dense`)."""
  config: T5Config
  embedder: nn.Module

  @nn.compact
  def __call__(self, encoded, encoder_input_tokens, decoder_input_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None, decoder_positions=None,
               enable_dropout=False, decode=False, max_decode_length=None):
    cfg = self.config
    deterministic = not enable_dropout
    seed = module_dropout_seed(self, deterministic, cfg.dropout_rate)
    y = self.embedder(decoder_input_tokens)  # [batch, target_len, embed]
    y = dropout.apply(y, cfg.dropout_rate, seed, site=0, broadcast_dims=(-2,))
    y = constrain(y, _ACT)
    relpos = RelativePositionBiases(cfg, bidirectional=False, name="relpos_bias")
    enc_valid = encoder_input_tokens > 0  # [batch, input_len]
    packed = encoder_segment_ids is not None or decoder_segment_ids is not None
    impl = None if decode else resolve_attention_impl(
        cfg, packed=packed, dropout=enable_dropout and cfg.dropout_rate > 0,
        lengths=(decoder_input_tokens.shape[1], encoder_input_tokens.shape[1]), stack="decoder")
    decode_index, max_len = None, None
    self_segments, cross_segments = None, None
    t = decoder_input_tokens.shape[1]
    initialized = decode and self.has_variable("cache", "decode_index")
    if not initialized:  # offsets within the row, as the encoder: [1, heads, target_len, ...]
      self_bias = relpos.for_lengths(t, t)
    if decode:
      index_var = self.variable("cache", "decode_index", lambda: jnp.zeros((), jnp.int32))
      if initialized:
        decode_index = index_var.value
        max_len = self.get_variable("cache", "max_length_marker").shape[0]
        index_var.value = decode_index + 1
        k_pos = jnp.arange(max_len, dtype=jnp.int32)[None]  # [1, max_len]
        self_bias = relpos(decode_index[None, None], k_pos)  # [1, heads, 1, max_len]
        self_mask = (k_pos <= decode_index)[:, None, None, :]  # [1, 1, 1, max_len]
      else:  # the initialising call: creates the cache, projects the cross-attention keys/values
        max_len = max_decode_length or decoder_input_tokens.shape[1]
        self.variable("cache", "max_length_marker", lambda: jnp.zeros((max_len,), jnp.int8))
        self_mask = (jnp.arange(t)[:, None] >= jnp.arange(t)[None, :])[None, None]
      cross_mask, enc_lengths = enc_valid[:, None, None, :], None
    elif impl == "cudnn":  # right padding, a row of padding alone with one key (the encoder's)
      self_mask, cross_mask = None, None
      enc_lengths = jnp.maximum(jnp.sum(enc_valid, axis=-1, dtype=jnp.int32), 1)
    elif impl == "pallas":
      self_mask, cross_mask, enc_lengths = None, None, None
      if decoder_segment_ids is not None:  # (the kernel adds the causal mask)
        self_segments = (decoder_segment_ids, decoder_segment_ids)
      if encoder_segment_ids is not None and decoder_segment_ids is not None:
        cross_segments = _kernel_segments(enc_valid, decoder_segment_ids, encoder_segment_ids)
      else:  # right padding as lengths: cheaper in the kernel than all-ones segment ids
        enc_lengths = jnp.sum(enc_valid, axis=-1, dtype=jnp.int32)
    else:
      causal = (jnp.arange(t)[:, None] >= jnp.arange(t)[None, :])[None, None]  # [1,1,t,t]
      self_mask = _and(causal, _segment_mask(decoder_segment_ids, decoder_segment_ids))
      cross_mask = _and(enc_valid[:, None, None, :],
                        _segment_mask(decoder_segment_ids, encoder_segment_ids))
      enc_lengths = None
    y = _stack(DecoderLayer, cfg, cfg.num_decoder_layers, 8, deterministic=deterministic,
               decode=decode, fused_impl=impl,
               decode_length=max_len if decode else None)(
                   y, encoded, self_bias, self_mask, cross_mask, enc_lengths, decode_index,
                   self_segments, cross_segments)
    y = LayerNorm(cfg, name="decoder_norm")(y)
    y = dropout.apply(y, cfg.dropout_rate, seed, site=1, broadcast_dims=(-2,))
    y = constrain(y, _ACT)
    if cfg.tie_word_embeddings:
      logits = self.embedder.attend(y * (cfg.d_model ** -0.5))
    else:
      logits = Dense(cfg.vocab_size, ("embed", "vocab"), cfg, kernel_init=FINAL_KERNEL_INIT,
                     fp32_out=True, name="logits_dense")(y)
    logits = logits.astype(jnp.float32)  # [batch, target_len, vocab]
    return constrain(logits, ("batch", "length", "vocab"))


class T5(nn.Module):
  """T5 encoder-decoder; see docs/design.md."""
  config: T5Config

  def setup(self):
    self.token_embedder = Embed(self.config)
    self.encoder = Encoder(self.config, self.token_embedder)
    self.decoder = Decoder(self.config, self.token_embedder)

  def encode(self, encoder_input_tokens, encoder_segment_ids=None, encoder_positions=None, *,
             enable_dropout=False):
    """Encoder outputs [batch, input_len, embed] in the compute dtype."""
    return self.encoder(encoder_input_tokens, encoder_segment_ids, encoder_positions,
                        enable_dropout)

  def decode(self, encoded, encoder_input_tokens, decoder_input_tokens,
             encoder_segment_ids=None, decoder_segment_ids=None, decoder_positions=None, *,
             enable_dropout=False, decode=False, max_decode_length=None):
    """Decoder logits float32 [batch, target_len, vocab].

    `decode=True`: incremental decoding with the `cache` collection. The first call (no cache
    yet, `mutable=["cache"]`) creates it for `max_decode_length` steps (default: the length of
    `decoder_input_tokens`) and projects the cross-attention keys/values once; later calls
    take one token [batch, 1] each.
    """
    return self.decoder(encoded, encoder_input_tokens, decoder_input_tokens,
                        encoder_segment_ids, decoder_segment_ids, decoder_positions,
                        enable_dropout, decode, max_decode_length)

  def __call__(self, encoder_input_tokens, decoder_input_tokens, encoder_segment_ids=None,
               decoder_segment_ids=None, encoder_positions=None, decoder_positions=None, *,
               enable_dropout=False):
    """Decoder logits float32 [batch, target_len, vocab] for int32 tokens [batch, length].

    Token id 0 is padding. Rows must be right-padded (every 0 after the row's real tokens, as
    seqio's feature converters and flanjax's own batches pad): the einsum path masks each 0,
    the fused GPU paths (`attention_impl` cudnn / pallas) mask from the row's count of real
    tokens on, so a 0 inside a row would be a key there. Packed rows: segment ids, 0 = padding.
    """
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, encoder_positions,
                          enable_dropout=enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       encoder_segment_ids, decoder_segment_ids, decoder_positions,
                       enable_dropout=enable_dropout)


# --------------------------------------------------------------------------- parameters


def _init_boxed(config: T5Config, rng, input_len: int, target_len: int):
  # The attention implementation does not change the parameters; einsum takes any length.
  model = T5(config.replace(attention_impl="xla"))
  enc = jnp.ones((1, input_len), jnp.int32)
  dec = jnp.ones((1, target_len), jnp.int32)
  return model.init({"params": rng}, enc, dec)["params"]


def init_params(config: T5Config, rng, input_len: int = 8, target_len: int = 8):
  """Randomly initialised parameters (plain arrays, `config.param_dtype`), jitted."""
  fn = jax.jit(lambda r: nn.unbox(_init_boxed(config, r, input_len, target_len)))
  return fn(rng)


def param_shapes(config: T5Config):
  """The `jax.ShapeDtypeStruct` tree of the parameters (no compute)."""
  return jax.eval_shape(lambda: nn.unbox(_init_boxed(config, jax.random.PRNGKey(0), 2, 2)))


def param_logical_axes(config: T5Config):
  """A pytree of `PartitionSpec`s of logical axis names, same structure as the params."""
  boxed = jax.eval_shape(lambda: _init_boxed(config, jax.random.PRNGKey(0), 2, 2))
  return nn.get_partition_spec(boxed)


LAYER_KEY = re.compile(r"^layers_(\d+)$")  # an unscanned layer's subtree


def scan_params(params, config: T5Config):
  """Stacks `{encoder,decoder}/layers_{i}` into `{encoder,decoder}/layers` (leading axis)."""
  out = dict(params)
  for stack, n in (("encoder", config.num_encoder_layers), ("decoder", config.num_decoder_layers)):
    sub = dict(params[stack])
    if "layers" in sub:
      continue
    layers = [sub.pop(f"layers_{i}") for i in range(n)]
    extra = [k for k in sub if LAYER_KEY.match(k)]
    if extra:
      raise ValueError(f"{stack} has {extra} beyond num_layers={n}.")
    sub["layers"] = jax.tree.map(lambda *xs: jnp.stack(xs), *layers)
    out[stack] = sub
  return out


def unscan_params(params, config: T5Config):
  """Splits `{encoder,decoder}/layers` (leading axis) into `layers_{i}` subtrees."""
  out = dict(params)
  for stack, n in (("encoder", config.num_encoder_layers), ("decoder", config.num_decoder_layers)):
    sub = dict(params[stack])
    if "layers" not in sub:
      continue
    stacked = sub.pop("layers")
    for i in range(n):
      sub[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], stacked)
    out[stack] = sub
  return out


def count_params(params) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def cast_for_compute(config: T5Config):
  return dtype_of(config.dtype)
