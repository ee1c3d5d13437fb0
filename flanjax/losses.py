"""Token-level cross entropy with z-loss and label smoothing (T5X semantics), and normalisers.

Losses are returned as SUMS over tokens; the trainer divides by a normaliser computed from the
whole (global) batch, so that gradient accumulation over microbatches gives exactly the
full-batch update.

On GPUs the forward's statistics over the float32 logits (max, sum of exponentials, target
logit, the accuracy metric's argmax) come from one Pallas kernel (`row_statistics`), which reads
the [tokens, vocab] logits once where XLA ran two passes: 1.46 ms against 2.88 ms at T5-base
b256's [32768, 32128] on an H100, -1.1 ms in the step (bench/NOTES.md row 114).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from flanjax.errors import FlanjaxError

# loss_normalizer: one of these names, or a positive float (a fixed factor, as T5X's
# `loss_normalizing_factor`).
NORMALIZERS = ("num_real_target_tokens", "num_total_target_tokens")


# Where the forward's statistics over the logits come from: "auto" (GPUs: "pallas", elsewhere
# "xla"), "xla" (XLA's reductions: a max pass, then the sum of exponentials and the argmax),
# "pallas" (`row_statistics`: one read). The kernel runs where the rows are split over every
# device (or one) and the vocabulary is not split; elsewhere XLA's.
STATS_IMPLS = ("auto", "xla", "pallas")


def cross_entropy_with_logits(logits, targets, *, z_loss: float = 0.0,
                              label_smoothing: float = 0.0, stats_impl: str = "auto"):
  """Per-token loss and z-loss.

  logits: float [batch, length, vocab]; targets: int [batch, length].
  Returns (loss [batch, length] including the z-loss term, z_loss [batch, length]).
  The label-smoothed loss is shifted by the entropy of the smoothed target distribution (as in
  T5X), so a perfect prediction has loss 0. The gradient with respect to the logits is written
  out in one elementwise pass (see `_cross_entropy_bwd`): reverse-mode only (a `custom_vjp`).
  """
  return _losses_and_correct(logits, targets, z_loss, label_smoothing, stats_impl)[:2]


def _losses_and_correct(logits, targets, z_loss, label_smoothing, stats_impl):
  """(loss incl. z-loss, z-loss, correct as 0 / 1) [batch, length] float32."""
  if not 0.0 <= label_smoothing < 1.0:
    raise FlanjaxError(f"label_smoothing={label_smoothing}: use a value in [0, 1).")
  if z_loss < 0:
    raise FlanjaxError(f"z_loss={z_loss}: use a value >= 0.")
  logits = logits.astype(jnp.float32)
  return _cross_entropy(logits, targets, float(z_loss), float(label_smoothing),
                        _stats_axes(logits, stats_impl))


def _stats_axes(logits, impl: str):
  """None for XLA's statistics, else the batch mesh axes to run `row_statistics` over."""
  if impl not in STATS_IMPLS:
    raise FlanjaxError(f"stats_impl={impl!r}: use one of {STATS_IMPLS}.")
  if impl == "auto":
    impl = "pallas" if jax.default_backend() == "gpu" else "xla"
  if impl == "xla" or logits.ndim != 3:
    return None
  from flanjax import layers
  return layers.kernel_batch_axes(logits)


def _smoothing(vocab: int, label_smoothing: float) -> tuple[float, float, float]:
  """(confidence on the target, mass on each other token, entropy of that distribution)."""
  confidence = 1.0 - label_smoothing
  low = label_smoothing / (vocab - 1)
  entropy = -(confidence * math.log(confidence) + (vocab - 1) * low * math.log(low + 1e-20))
  return confidence, low, entropy


def _statistics(logits, targets, axes):
  """(max, sum of exp(x - max), target logit, first argmax, sum of logits) [b, l] each; the
  max is 0 where it is not finite (as jax.nn.logsumexp)."""
  if axes is None:
    m = jnp.max(logits, axis=-1)
    m = jnp.where(jnp.isfinite(m), m, 0.0)  # [batch, length]
    sum_exp = jnp.sum(jnp.exp(logits - m[..., None]), axis=-1)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    # the sum of logits: label smoothing only (XLA drops it otherwise)
    return m, sum_exp, target_logit, jnp.argmax(logits, axis=-1), jnp.sum(logits, axis=-1)

  def rows(x, t):  # x [b, l, v], t [b, l] -> [b, l] each
    out = row_statistics(x.reshape(-1, x.shape[-1]), t.reshape(-1))
    return tuple(o.reshape(t.shape) for o in out)
  if axes:
    from jax.sharding import PartitionSpec as P
    spec = P(axes)
    rows = jax.shard_map(rows, in_specs=(spec, spec), out_specs=(spec,) * 5, check_vma=False)
  m, sum_exp, target_logit, argmax, sum_logits = rows(logits, targets)
  # A row of -inf logits: the kernel's max is -inf and its sum 0; with 0 as the max the sum is
  # 0 as well, so log Z = -inf either way.
  return (jnp.where(jnp.isfinite(m), m, 0.0), sum_exp, target_logit, argmax, sum_logits)


def _cross_entropy_fwd(logits, targets, z_loss, label_smoothing, axes):
  vocab = logits.shape[-1]
  # log Z as jax.nn.logsumexp computes it, keeping the max and the sum for the backward
  m, sum_exp, target_logit, argmax, sum_logits = _statistics(logits, targets, axes)
  log_z = m + jnp.log(sum_exp)
  nll = log_z - target_logit  # -log p(target)
  if label_smoothing:
    confidence, low, entropy = _smoothing(vocab, label_smoothing)
    # -sum_v q_v log p_v with q = confidence on the target, `low` elsewhere.
    sum_logp = sum_logits - vocab * log_z
    loss = confidence * nll - low * (sum_logp + nll) - entropy
  else:
    loss = nll
  zl = z_loss * jnp.square(log_z)
  correct = (argmax == targets).astype(jnp.float32)
  return (loss + zl, zl, correct), (logits, targets, m, sum_exp, log_z)


def _cross_entropy_bwd(z_loss, label_smoothing, axes, res, g):
  """d/dlogits of (loss + zl, zl) as one elementwise expression of the logits, the forward's
  max and sum of exponentials and the target, which XLA fuses with the output layer's cast to
  bf16: one read of the float32 logits, one bf16 write. Autodiff of the forward wrote the
  softmax term and a scattered one-hot term as float32 [tokens, vocab] tensors and then cast
  their sum (bench/NOTES.md row 88: -0.7..-2.0 % of T5-base's b256 step on an H100)."""
  del axes
  logits, targets, m, sum_exp, log_z = res  # [b, l, v], [b, l], then [b, l] each
  g_total, g_zl, _ = g  # cotangents of (loss + zl) and zl, [b, l]; `correct` has none
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


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _cross_entropy(logits, targets, z_loss: float, label_smoothing: float, axes):
  return _cross_entropy_fwd(logits, targets, z_loss, label_smoothing, axes)[0]


_cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


@dataclasses.dataclass(frozen=True)
class StatsOptions:
  """`row_statistics`' tiling: rows per program, vocabulary columns per loop step; Triton's
  warps and pipeline stages."""
  block_rows: int = 1
  block_cols: int = 2048
  num_warps: int = 4
  num_stages: int = 4


STATS_OPTIONS = StatsOptions()


def _stats_kernel(x_ref, t_ref, m_ref, s_ref, tl_ref, am_ref, sl_ref, *, opts: StatsOptions):
  n, vocab = x_ref.shape
  br, bc = opts.block_rows, opts.block_cols
  rows = pl.program_id(0) * br + jnp.arange(br, dtype=jnp.int32)
  real = rows < n
  t = plgpu.load(t_ref.at[rows], mask=real, other=0)  # [br]
  t = jnp.where(t < 0, t + vocab, t)  # negative targets count from the end, as in jnp indexing

  def step(c, carry):
    m, s, am, tl, sl = carry  # [br] each
    cols = c * bc + jnp.arange(bc, dtype=jnp.int32)
    mask = real[:, None] & (cols < vocab)[None, :]
    x = plgpu.load(x_ref.at[rows[:, None], cols[None, :]], mask=mask,
                   other=-jnp.inf).astype(jnp.float32)  # [br, bc]
    cm = jnp.max(x, axis=1)
    ci = jax.lax.argmax(x, 1, jnp.int32) + c * bc  # the first of equal maxima
    m_new = jnp.maximum(m, cm)
    m_safe = jnp.where(m_new == -jnp.inf, 0.0, m_new)
    s = s * jnp.exp(m - m_safe) + jnp.sum(jnp.exp(x - m_safe[:, None]), axis=1)
    am = jnp.where(cm > m, ci, am)  # an earlier chunk's equal maximum stays
    tl = tl + jnp.sum(jnp.where((cols[None, :] == t[:, None]) & mask, x, 0.0), axis=1)
    sl = sl + jnp.sum(jnp.where(mask, x, 0.0), axis=1)
    return m_new, s, am, tl, sl

  zeros = jnp.zeros((br,), jnp.float32)
  m, s, am, tl, sl = jax.lax.fori_loop(
      0, pl.cdiv(vocab, bc), step,
      (jnp.full((br,), -jnp.inf, jnp.float32), zeros, jnp.zeros((br,), jnp.int32), zeros, zeros))
  tl = jnp.where((t >= 0) & (t < vocab), tl, jnp.nan)  # out of range: NaN, as take_along_axis
  for ref, v in ((m_ref, m), (s_ref, s), (am_ref, am), (tl_ref, tl), (sl_ref, sl)):
    plgpu.store(ref.at[rows], v, mask=real)


def row_statistics(logits, targets, opts: StatsOptions | None = None):
  """One read of float32 logits [n, vocab] with targets [n] for (max, sum of exp(x - max),
  target logit, first argmax (int32), sum of logits), each [n]. A Pallas (Triton) kernel for
  GPUs (online max and sum over vocabulary chunks); Pallas' interpreter elsewhere (tests).

  As XLA's reductions except: a target outside [-vocab, vocab) gives a NaN target logit (as
  `jnp.take_along_axis`), and in a row with a NaN the argmax is that of the other entries (the
  loss is NaN either way). A row of -inf has max -inf and sum 0."""
  opts = opts or STATS_OPTIONS
  for name in ("block_rows", "block_cols"):
    v = getattr(opts, name)
    if v <= 0 or v & (v - 1):
      raise ValueError(f"StatsOptions.{name}={v}: Triton needs a power of two.")
  n = logits.shape[0]
  if n == 0:
    empty = jnp.zeros((0,), jnp.float32)
    return empty, empty, empty, jnp.zeros((0,), jnp.int32), empty
  f32 = jax.ShapeDtypeStruct((n,), jnp.float32)
  interpret = jax.default_backend() != "gpu"
  params = None
  if not interpret:
    params = plgpu.CompilerParams(num_warps=opts.num_warps, num_stages=opts.num_stages)
  m, s, tl, am, sl = pl.pallas_call(
      functools.partial(_stats_kernel, opts=opts), grid=(pl.cdiv(n, opts.block_rows),),
      out_shape=(f32, f32, f32, jax.ShapeDtypeStruct((n,), jnp.int32), f32),
      compiler_params=params, interpret=interpret,
      name="flanjax_logit_stats")(logits, targets.astype(jnp.int32))
  return m, s, tl, am, sl


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
                  label_smoothing: float = 0.0, stats_impl: str = "auto") -> dict[str, jax.Array]:
  """Summed statistics of one (micro)batch: loss, z_loss, correct tokens (the first argmax is
  the target), weight sum. `stats_impl`: see `STATS_IMPLS`."""
  weights = weights.astype(jnp.float32)
  loss, zl, correct = _losses_and_correct(logits, targets, z_loss, label_smoothing, stats_impl)
  return {
      "loss": jnp.sum(loss * weights),
      "z_loss": jnp.sum(zl * weights),
      "correct": jnp.sum(correct * weights),
      "weight": jnp.sum(weights),
  }
