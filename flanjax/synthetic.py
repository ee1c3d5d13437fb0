"""TensorFlow-free synthetic batches in the packed `EncDecFeatureConverter` format.

Used by tests, benchmarks and GPU machines without TensorFlow. Each row packs a few examples
(segment ids 1..k, positions restarting per example, padding 0). The task is learnable: the
target copies the start of its input, so losses fall during training. Batch `i` depends only on
(seed, i), so `start_batch` resumes exactly and shards of a global batch are consistent.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from flanjax.config import T5Config
from flanjax.errors import FlanjaxError

FEATURES = ("encoder_input_tokens", "encoder_segment_ids", "encoder_positions",
            "decoder_input_tokens", "decoder_target_tokens", "decoder_segment_ids",
            "decoder_positions", "decoder_loss_weights")


def _pack_row(rng, input_len, target_len, max_token, eos, start_token, pack):
  row = {k: np.zeros(input_len if k.startswith("encoder") else target_len, np.int32)
         for k in FEATURES}
  ei = di = 0
  seg = 0
  while True:
    n_in = int(rng.integers(2, max(3, input_len // 2 + 1)))
    n_out = int(rng.integers(2, max(3, min(n_in, target_len // 2) + 1)))
    if ei + n_in > input_len or di + n_out > target_len:
      break
    seg += 1
    toks = rng.integers(2, max_token, size=n_in - 1).astype(np.int32)
    inp = np.append(toks, eos)
    tgt = np.append(toks[: n_out - 1], eos)
    dec_in = np.concatenate([[start_token], tgt[:-1]]).astype(np.int32)
    row["encoder_input_tokens"][ei:ei + n_in] = inp
    row["encoder_segment_ids"][ei:ei + n_in] = seg
    row["encoder_positions"][ei:ei + n_in] = np.arange(n_in)
    row["decoder_target_tokens"][di:di + n_out] = tgt
    row["decoder_input_tokens"][di:di + n_out] = dec_in
    row["decoder_segment_ids"][di:di + n_out] = seg
    row["decoder_positions"][di:di + n_out] = np.arange(n_out)
    row["decoder_loss_weights"][di:di + n_out] = 1
    ei, di = ei + n_in, di + n_out
    if not pack:
      break
  return row


def make_batch(config: T5Config, batch_size: int, input_len: int, target_len: int, seed: int,
               index: int, pack: bool = True) -> dict[str, np.ndarray]:
  """Global batch number `index` (int32 arrays [batch_size, length])."""
  rng = np.random.default_rng([seed, index])
  max_token = min(config.vocab_size, 256)
  rows = [_pack_row(rng, input_len, target_len, max_token, config.eos_token_id,
                    config.decoder_start_token_id, pack) for _ in range(batch_size)]
  return {k: np.stack([r[k] for r in rows]) for k in FEATURES}


def batches(config: T5Config, batch_size: int, input_len: int, target_len: int, seed: int = 0,
            *, shard_index: int = 0, num_shards: int = 1, start_batch: int = 0,
            pack: bool = True) -> Iterator[dict[str, np.ndarray]]:
  """Infinite iterator of packed batches; with num_shards > 1 yields this shard's rows
  (batch_size // num_shards of them) of each global batch of `batch_size` rows."""
  if input_len < 4 or target_len < 4:
    raise FlanjaxError(f"synthetic batches need input_len, target_len >= 4, got "
                       f"{input_len}, {target_len}.")
  if batch_size % num_shards:
    raise FlanjaxError(f"batch_size={batch_size} is not divisible by num_shards={num_shards}.")
  per = batch_size // num_shards
  index = start_batch
  while True:
    b = make_batch(config, batch_size, input_len, target_len, seed, index, pack)
    yield {k: v[shard_index * per:(shard_index + 1) * per] for k, v in b.items()}
    index += 1
