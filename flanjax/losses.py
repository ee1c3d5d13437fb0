"""Token-level cross entropy with z-loss and label smoothing (T5X semantics), and normalisers.

Losses are returned as SUMS over tokens; the trainer divides by a normaliser computed from the
whole (global) batch, so that gradient accumulation over microbatches gives exactly the
full-batch update.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

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
  T5X), so a perfect prediction has loss 0.
  """
  logits = logits.astype(jnp.float32)
  vocab = logits.shape[-1]
  log_z = jax.nn.logsumexp(logits, axis=-1)  # [batch, length]
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  nll = log_z - target_logit  # -log p(target)
  if label_smoothing:
    confidence = 1.0 - label_smoothing
    low = label_smoothing / (vocab - 1)
    # -sum_v q_v log p_v with q = confidence on the target, `low` elsewhere.
    sum_logp = jnp.sum(logits, axis=-1) - vocab * log_z
    loss = confidence * nll - low * (sum_logp + nll)
    normalizing_constant = -(confidence * jnp.log(confidence)
                             + (vocab - 1) * low * jnp.log(low + 1e-20))
    loss = loss - normalizing_constant
  else:
    loss = nll
  zl = z_loss * jnp.square(log_z)
  return loss + zl, zl


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
