"""Inference: incremental decoding with a key/value cache (greedy, sampling, beam) and scoring.

`predict` encodes once, then steps the decoder one token at a time inside a `jax.lax.while_loop`,
with keys/values of past positions in the flax `cache` collection. Tokens after EOS are 0 (EOS
itself is kept). Rows whose encoder input is all padding (0: the rows that fill a last partial
batch) are done from the start and decode to all 0, so they never keep the loop running. `score`
is the teacher-forced log-likelihood of given targets (float32).
"""
from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flanjax.config import T5Config
from flanjax.errors import FlanjaxError
from flanjax.model import T5

Array = Any
METHODS = ("greedy", "sample", "beam")
_NEG = -1e9  # log-probability of impossible choices (finite: avoids inf - inf)


class DecodeError(FlanjaxError):
  """A bad `predict` / `score` argument (method, lengths, beam or sampling settings)."""


def _padding_rows(enc_tokens) -> Array:
  """bool [batch]: rows whose encoder input is all padding (a real input holds at least EOS)."""
  return jnp.all(enc_tokens == 0, axis=-1)


def _init_cache(model: T5, params, encoded, enc_tokens, max_len: int):
  """The decoder cache for `max_len` steps: zero self-attention keys/values and the
  cross-attention keys/values projected once from `encoded`."""
  start = jnp.zeros((enc_tokens.shape[0], 1), jnp.int32)
  _, variables = model.apply({"params": params}, encoded, enc_tokens, start, decode=True,
                             max_decode_length=max_len, mutable=["cache"], method=T5.decode)
  return variables["cache"]


def _step(model: T5, params, cache, encoded, enc_tokens, tokens):
  """One decoder step: tokens [batch] -> (float32 logits [batch, vocab], new cache)."""
  logits, variables = model.apply({"params": params, "cache": cache}, encoded, enc_tokens,
                                  tokens[:, None], decode=True, mutable=["cache"],
                                  method=T5.decode)
  return logits[:, 0], variables["cache"]


def filter_logits(logits: Array, top_k: int = 0, top_p: float = 1.0) -> Array:
  """Keeps the top_k largest logits and the smallest nucleus of probability >= top_p."""
  if top_k and top_k > 0:
    kth = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][..., -1:]
    logits = jnp.where(logits < kth, _NEG, logits)
  if top_p < 1.0:
    order = jnp.argsort(-logits, axis=-1)
    sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
    cum = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
    # Remove a token when the mass before it already reaches top_p (always keeps the first).
    remove_sorted = (cum - jax.nn.softmax(sorted_logits, axis=-1)) >= top_p
    remove = jnp.zeros_like(remove_sorted).at[
        jnp.arange(logits.shape[0])[:, None], order].set(remove_sorted)
    logits = jnp.where(remove, _NEG, logits)
  return logits


def _sampling_decode(config, model, params, enc_tokens, max_len, *, sample, temperature, top_k,
                     top_p, rng):
  batch = enc_tokens.shape[0]
  encoded = model.apply({"params": params}, enc_tokens, method=T5.encode)
  cache = _init_cache(model, params, encoded, enc_tokens, max_len)
  out = jnp.zeros((batch, max_len), jnp.int32)
  start = jnp.full((batch,), config.decoder_start_token_id, jnp.int32)
  done = _padding_rows(enc_tokens)  # padding rows: done from the start

  def cond(state):
    i, _, _, _, done = state
    return (i < max_len) & ~jnp.all(done)

  def body(state):
    i, cur, cache, out, done = state
    logits, cache = _step(model, params, cache, encoded, enc_tokens, cur)
    if sample:
      logits = filter_logits(logits / temperature, top_k, top_p)
      nxt = jax.random.categorical(jax.random.fold_in(rng, i), logits, axis=-1)
    else:
      nxt = jnp.argmax(logits, axis=-1)
    nxt = jnp.where(done, 0, nxt.astype(jnp.int32))
    out = out.at[:, i].set(nxt)
    done = done | (nxt == config.eos_token_id)
    return i + 1, nxt, cache, out, done

  state = jax.lax.while_loop(cond, body, (jnp.int32(0), start, cache, out, done))
  return state[3], state[0]


def brevity_penalty(alpha: float, length):
  """T5X / GNMT length penalty ((5 + length) / 6) ** alpha."""
  return ((5.0 + length) / 6.0) ** alpha


def _gather_beams(tree, beam_idx, batch, beams, scan_layers):
  """Reorders [batch*beams, ...] cached keys/values (and [batch, beams, ...] arrays) by beam."""
  flat_idx = (jnp.arange(batch)[:, None] * beams + beam_idx).reshape(-1)  # [batch*beams]

  def gather(path, x):
    name = getattr(path[-1], "key", None)
    if name not in ("cached_key", "cached_value"):
      return x
    return jnp.take(x, flat_idx, axis=1 if scan_layers else 0)
  return jax.tree_util.tree_map_with_path(gather, tree)


def _beam_decode(config, model, params, enc_tokens, max_len, *, num_beams, alpha):
  """Beam search; finished hypotheses are scored log p / ((5 + len) / 6) ** alpha.

  Hypotheses still open at max_decode_length are scored the same way (length max_decode_length)
  and compete with the EOS-finished ones, as in Hugging Face's beam search. T5X's instead
  returns open hypotheses only for rows where none finished, so the two can differ when
  max_decode_length truncates. Stops once no open beam of any real row can beat that row's
  worst kept finished hypothesis (a bound only for alpha >= 0).
  """
  batch, k = enc_tokens.shape[0], num_beams
  vocab = config.vocab_size
  eos = config.eos_token_id
  enc_k = jnp.repeat(enc_tokens, k, axis=0)  # [batch*beams, input_len]
  encoded = model.apply({"params": params}, enc_tokens, method=T5.encode)
  encoded = jnp.repeat(encoded, k, axis=0)
  cache = _init_cache(model, params, encoded, enc_k, max_len)
  alive_seq = jnp.zeros((batch, k, max_len), jnp.int32)
  alive_lp = jnp.tile(jnp.array([0.0] + [_NEG] * (k - 1), jnp.float32), (batch, 1))
  fin_seq = jnp.zeros((batch, k, max_len), jnp.int32)
  fin_score = jnp.full((batch, k), _NEG, jnp.float32)
  cur = jnp.full((batch * k,), config.decoder_start_token_id, jnp.int32)
  pad = _padding_rows(enc_tokens)  # padding rows: done from the start

  def cond(state):
    i, _, _, _, alive_lp, _, fin_score = state
    # Stop early once no open beam can beat the worst kept finished hypothesis.
    best_possible = alive_lp[:, 0] / brevity_penalty(alpha, max_len)
    hopeless = jnp.all((best_possible < jnp.min(fin_score, axis=1)) | pad)
    return (i < max_len) & ~hopeless

  def body(state):
    i, cur, cache, alive_seq, alive_lp, fin_seq, fin_score = state
    logits, cache = _step(model, params, cache, encoded, enc_k, cur)
    logp = jax.nn.log_softmax(logits, axis=-1).reshape(batch, k, vocab)
    cand = (alive_lp[:, :, None] + logp).reshape(batch, k * vocab)
    top_lp, top_idx = jax.lax.top_k(cand, 2 * k)  # [batch, 2k]
    top_beam, top_tok = top_idx // vocab, (top_idx % vocab).astype(jnp.int32)
    seqs = jnp.take_along_axis(alive_seq, top_beam[:, :, None], axis=1)
    seqs = seqs.at[:, :, i].set(top_tok)  # [batch, 2k, max_len]
    is_eos = top_tok == eos
    last = i == max_len - 1
    # Finished candidates: those ending in EOS, and at the last step every candidate.
    ends = is_eos | last
    new_fin = jnp.where(ends & (top_lp > _NEG / 2),
                        top_lp / brevity_penalty(alpha, i + 1), _NEG)
    all_seq = jnp.concatenate([fin_seq, seqs], axis=1)
    all_score = jnp.concatenate([fin_score, new_fin], axis=1)
    fin_score, keep = jax.lax.top_k(all_score, k)
    fin_seq = jnp.take_along_axis(all_seq, keep[:, :, None], axis=1)
    # Alive: the best k candidates that did not end.
    open_lp = jnp.where(is_eos, _NEG, top_lp)
    alive_lp, keep = jax.lax.top_k(open_lp, k)
    alive_seq = jnp.take_along_axis(seqs, keep[:, :, None], axis=1)
    beam_idx = jnp.take_along_axis(top_beam, keep, axis=1)  # [batch, k]
    cache = _gather_beams(cache, beam_idx, batch, k, config.scan_layers)
    cur = jnp.take_along_axis(top_tok, keep, axis=1).reshape(-1)
    return i + 1, cur, cache, alive_seq, alive_lp, fin_seq, fin_score

  state = (jnp.int32(0), cur, cache, alive_seq, alive_lp, fin_seq, fin_score)
  state = jax.lax.while_loop(cond, body, state)
  best = state[5][:, 0]  # [batch, max_len]
  # Zero everything after the first EOS, and padding rows.
  after = jnp.cumsum(best == eos, axis=-1) - (best == eos) > 0
  return jnp.where(after | pad[:, None], 0, best), state[0]


@functools.lru_cache(maxsize=64)
def _compiled_predict(config: T5Config, max_len: int, method: str, num_beams: int, alpha: float,
                      temperature: float, top_k: int, top_p: float):
  model = T5(config)

  def fn(params, enc_tokens, rng):
    if method == "beam":
      return _beam_decode(config, model, params, enc_tokens, max_len, num_beams=num_beams,
                          alpha=alpha)
    return _sampling_decode(config, model, params, enc_tokens, max_len,
                            sample=method == "sample", temperature=temperature, top_k=top_k,
                            top_p=top_p, rng=rng)
  return jax.jit(fn)


def predict(config: T5Config, params, encoder_input_tokens, *, max_decode_length: int,
            method: str = "greedy", num_beams: int = 4, alpha: float = 0.6,
            temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, rng=None) -> Array:
  """Decodes int32 [batch, max_decode_length] (EOS kept, 0 after it) from encoder inputs.

  method: "greedy"; "sample" (temperature, top_k (0: off), top_p (1.0: off), rng required);
  "beam" (num_beams >= 1, length penalty alpha >= 0: scores log p / ((5 + len) / 6) ** alpha;
  hypotheses open at max_decode_length compete with finished ones, as in Hugging Face, not
  T5X). Rows of all-0 (padding) inputs decode to all 0 without keeping the loop running.
  """
  return _predict_with_steps(config, params, encoder_input_tokens,
                             max_decode_length=max_decode_length, method=method,
                             num_beams=num_beams, alpha=alpha, temperature=temperature,
                             top_k=top_k, top_p=top_p, rng=rng)[0]


def valid_alpha(alpha) -> bool:
  """Whether `alpha` is a beam length penalty: a finite number >= 0 (a negative alpha favours
  long hypotheses, and beam search's early stop is then wrong)."""
  return (not isinstance(alpha, bool) and isinstance(alpha, (int, float, np.integer, np.floating))
          and math.isfinite(alpha) and alpha >= 0)


def check_beam_settings(num_beams, alpha) -> None:
  """DecodeError unless num_beams is an integer >= 1 and alpha a finite number >= 0."""
  if isinstance(num_beams, bool) or not isinstance(num_beams, (int, np.integer)) or num_beams < 1:
    raise DecodeError(f"num_beams must be an integer >= 1, got {num_beams!r}.")
  if not valid_alpha(alpha):
    raise DecodeError(f"alpha (the beam length penalty) must be a number >= 0, got {alpha!r} "
                      "(0: no length penalty; T5's default is 0.6).")


def _predict_with_steps(config: T5Config, params, encoder_input_tokens, *, max_decode_length,
                        method="greedy", num_beams=4, alpha=0.6, temperature=1.0, top_k=0,
                        top_p=1.0, rng=None):
  """`predict`, and the number of decoder steps its loop ran (an int32 scalar)."""
  if method not in METHODS:
    raise DecodeError(f"predict(method={method!r}): use one of {METHODS}.")
  if max_decode_length <= 0:
    raise DecodeError(f"max_decode_length must be positive, got {max_decode_length}.")
  if method == "sample":
    if rng is None:
      raise DecodeError("predict(method='sample') needs rng=jax.random.PRNGKey(seed).")
    if temperature <= 0:
      raise DecodeError(f"temperature must be positive, got {temperature} (use "
                        "method='greedy' for temperature 0).")
    if not 0.0 < top_p <= 1.0:
      raise DecodeError(f"top_p must be in (0, 1], got {top_p}.")
  if method == "beam":
    check_beam_settings(num_beams, alpha)
  if rng is None:
    rng = jax.random.PRNGKey(0)
  tokens = jnp.asarray(encoder_input_tokens, jnp.int32)
  if tokens.ndim != 2:
    raise DecodeError(f"encoder_input_tokens must be [batch, length], got shape "
                      f"{tokens.shape}.")
  fn = _compiled_predict(config, int(max_decode_length), method, int(num_beams), float(alpha),
                         float(temperature), int(top_k), float(top_p))
  return fn(params, tokens, rng)


_SCORE_KEYS = ("encoder_input_tokens", "decoder_input_tokens", "encoder_segment_ids",
               "decoder_segment_ids", "encoder_positions", "decoder_positions")


@functools.lru_cache(maxsize=16)
def _compiled_score(config: T5Config):
  model = T5(config)

  def fn(params, batch):
    inputs = {k: batch[k] for k in _SCORE_KEYS if k in batch}
    logits = model.apply({"params": params}, **inputs)  # [batch, len, vocab] float32
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    tok = jnp.take_along_axis(logp, batch["decoder_target_tokens"][..., None], axis=-1)[..., 0]
    w = batch["decoder_loss_weights"].astype(jnp.float32)
    return jnp.sum(tok * w, axis=-1)  # [batch]
  return jax.jit(fn)


def score(config: T5Config, params, batch: dict[str, Any]) -> Array:
  """Per-example sum of log p(decoder_target_tokens) weighted by decoder_loss_weights, float32.

  For packed batches this sums over all segments of a row; score unpacked batches to rank
  options.
  """
  need = ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
          "decoder_loss_weights")
  missing = [k for k in need if k not in batch]
  if missing:
    raise DecodeError(f"score() batch lacks {missing}; it needs {list(need)}.")
  batch = {k: jnp.asarray(v) for k, v in batch.items() if k in need or k in _SCORE_KEYS}
  return _compiled_score(config)(params, batch)
