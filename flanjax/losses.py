"""Token-level cross entropy with z-loss and label smoothing (T5X semantics), and normalisers.

Losses are returned as SUMS over tokens; the trainer divides by a normaliser computed from the
whole (global) batch, so that gradient accumulation over microbatches gives exactly the
full-batch update.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from flanjax.errors import FlanjaxError

# loss_normalizer: one of these names, or a positive float (a fixed factor, as T5X's
# `loss_normalizing_factor`).
NORMALIZERS = ("num_real_target_tokens", "num_total_target_tokens")


def cross_entropy_with_logits(logits, targets, *, z_loss: float = 0.0,
                              label_smoothing: float = 0.0):
  """Per-token loss and z-loss.

  logits: float [batch, length, vocab]; targets: int [batch, length].
  Returns (loss [batch, length] including the z-loss term, z_loss [batch, length]).
  The label-smoothed loss is shifted by the entropy of the smoothed target distribution (as in
  T5X), so a perfect prediction has loss 0. The gradient with respect to the logits is written
  out in one elementwise pass (see `_cross_entropy_bwd`): reverse-mode only (a `custom_vjp`).
  """
  if not 0.0 <= label_smoothing < 1.0:
    raise FlanjaxError(f"label_smoothing={label_smoothing}: use a value in [0, 1).")
  if z_loss < 0:
    raise FlanjaxError(f"z_loss={z_loss}: use a value >= 0.")
  return _cross_entropy(logits.astype(jnp.float32), targets, float(z_loss),
                        float(label_smoothing))


def _smoothing(vocab: int, label_smoothing: float) -> tuple[float, float, float]:
  """(confidence on the target, mass on each other token, entropy of that distribution)."""
  confidence = 1.0 - label_smoothing
  low = label_smoothing / (vocab - 1)
  entropy = -(confidence * math.log(confidence) + (vocab - 1) * low * math.log(low + 1e-20))
  return confidence, low, entropy


def _cross_entropy_fwd(logits, targets, z_loss, label_smoothing):
  vocab = logits.shape[-1]
  # log Z as jax.nn.logsumexp computes it, keeping the max and the sum for the backward
  m = jnp.max(logits, axis=-1)
  m = jnp.where(jnp.isfinite(m), m, 0.0)  # [batch, length]
  sum_exp = jnp.sum(jnp.exp(logits - m[..., None]), axis=-1)
  log_z = m + jnp.log(sum_exp)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  nll = log_z - target_logit  # -log p(target)
  if label_smoothing:
    confidence, low, entropy = _smoothing(vocab, label_smoothing)
    # -sum_v q_v log p_v with q = confidence on the target, `low` elsewhere.
    sum_logp = jnp.sum(logits, axis=-1) - vocab * log_z
    loss = confidence * nll - low * (sum_logp + nll) - entropy
  else:
    loss = nll
  zl = z_loss * jnp.square(log_z)
  return (loss + zl, zl), (logits, targets, m, sum_exp, log_z)


def _cross_entropy_bwd(z_loss, label_smoothing, res, g):
  """d/dlogits of (loss + zl, zl) as one elementwise expression of the logits, the forward's
  max and sum of exponentials and the target, which XLA fuses with the output layer's cast to
  bf16: one read of the float32 logits, one bf16 write. Autodiff of the forward wrote the
  softmax term and a scattered one-hot term as float32 [tokens, vocab] tensors and then cast
  their sum (bench/NOTES.md row 88: -0.7..-2.0 % of T5-base's b256 step on an H100)."""
  logits, targets, m, sum_exp, log_z = res  # [b, l, v], [b, l], then [b, l] each
  g_total, g_zl = g  # cotangents of (loss + zl) and zl, [b, l]
  vocab = logits.shape[-1]
  # softmax [b, l, v] as autodiff of logsumexp forms it: exp(x - log Z) would carry log Z's
  # rounding (~1e-6 relative for |log Z| ~ 10) into every entry, 3x the error
  p = jnp.exp(logits - m[..., None]) / sum_exp[..., None]
  onehot = jax.lax.broadcasted_iota(jnp.int32, logits.shape, 2) == targets[..., None]
  if label_smoothing:  # d/dlogits of confidence * nll - low * (sum_logp + nll)
    confidence, low, _ = _smoothing(vocab, label_smoothing)
    d_loss = ((confidence - low + low * vocab) * p - low
              - jnp.where(onehot, confidence - low, 0.0))
  else:
    d_loss = p - jnp.where(onehot, 1.0, 0.0)
  d = g_total[..., None] * d_loss
  if z_loss:  # d(z * log_z^2) = 2 z log_z p
    d = d + ((g_total + g_zl) * (2.0 * z_loss) * log_z)[..., None] * p
  return d, np.zeros(targets.shape, jax.dtypes.float0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _cross_entropy(logits, targets, z_loss: float, label_smoothing: float):
  return _cross_entropy_fwd(logits, targets, z_loss, label_smoothing)[0]


_cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def loss_denominator(weights, loss_normalizer) -> jax.Array:
  """The normaliser of the summed loss for a (global) batch: a token count or a fixed factor."""
  if isinstance(loss_normalizer, (int, float)) and not isinstance(loss_normalizer, bool):
    if loss_normalizer <= 0:
      raise FlanjaxError(f"loss_normalizer={loss_normalizer}: a fixed factor must be > 0.")
    return jnp.asarray(loss_normalizer, jnp.float32)
  if loss_normalizer == "num_real_target_tokens":
    return jnp.maximum(jnp.sum(weights.astype(jnp.float32)), 1.0)
  if loss_normalizer == "num_total_target_tokens":
    return jnp.asarray(weights.size, jnp.float32)
  raise FlanjaxError(f"loss_normalizer={loss_normalizer!r}: use one of {NORMALIZERS} or a "
                     "positive number (fixed factor).")


def weighted_sums(logits, targets, weights, *, z_loss: float = 0.0,
                  label_smoothing: float = 0.0) -> dict[str, jax.Array]:
  """Summed statistics of one (micro)batch: loss, z_loss, correct tokens, weight sum."""
  weights = weights.astype(jnp.float32)
  loss, zl = cross_entropy_with_logits(logits, targets, z_loss=z_loss,
                                       label_smoothing=label_smoothing)
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return {
      "loss": jnp.sum(loss * weights),
      "z_loss": jnp.sum(zl * weights),
      "correct": jnp.sum(correct * weights),
      "weight": jnp.sum(weights),
  }
