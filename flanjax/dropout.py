"""Dropout masks from a counter-based hash of (seed, site, index).

A T5 layer has 4-6 dropout sites (residuals, the MLP's hidden units, attention). Drawing each
mask with `jax.random` costs two threefry computations per site (the `make_rng` fold-in and the
bits), each compiled into kernels of its own: ~250 for T5-base's training step, ~490 for
T5-large's. On an H100 they took ~31 s of base fine-tuning's 70-74 s compile
(bench/NOTES.md, rows 77 and 79). Here each layer folds one `make_rng` key into a uint32 seed
(`seed_from_key`); each site hashes that seed with its static site number (`site_seed`), and the
mask is a hash of the site seed and each element's index (`keep_mask`): a few integer ops that
XLA fuses into the op that applies the mask. The attention kernel's in-kernel dropout
(`flash_attention.dropout_keep_mask`) hashes (seed, row, head, query, key) with the same mixer
(lowbias32); the einsum attention path draws that mask too.

Seeds are 32 bits: over a long run a few (layer, step) pairs share a seed and hence their masks
(~200 pairs in 100k steps of a 24-layer stack), which is statistically harmless.

Masks depend on global indices only, so they are the same under any sharding of the array.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

Array = Any

GOLDEN = 0x9E3779B9  # 2^32 / golden ratio: spreads consecutive integers over the 32 bits


def hash32(x: Array) -> Array:
  """A 32-bit integer mixer (lowbias32): uint32 -> uint32, a bijection with good avalanche."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def seed_from_key(key: Array) -> Array:
  """A uint32 scalar seed from a PRNG key (raw uint32 key data or a typed key); no draw."""
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  words = jnp.ravel(key).astype(jnp.uint32)  # threefry: 2 words
  seed = jnp.uint32(0)
  for i in range(words.shape[0]):
    seed = hash32(seed ^ words[i])
  return seed


def site_seed(seed: Array, site: int) -> Array:
  """The seed of dropout site `site` (a static int) of the module holding `seed`."""
  return hash32(seed ^ hash32(jnp.uint32((site * GOLDEN) & 0xFFFFFFFF)))


def threshold(rate: float) -> int:
  """keep iff the top 24 bits of the hash >= this: P(keep) = 1 - rate, to 2^-24."""
  return int(round(rate * (1 << 24)))


def keep_mask(seed: Array, shape: Sequence[int], rate: float) -> Array:
  """bool `shape`: element i is kept with probability 1 - rate, from hash(seed, hash(i)).

  i is the element's row-major index (uint32: shapes of more than 2^32 elements repeat the
  mask every 2^32 elements). Hashing the index before mixing in the seed keeps the masks of
  two seeds from being shifted copies of each other.
  """
  shape = tuple(int(n) for n in shape)
  index = jnp.zeros(shape, jnp.uint32)
  for axis, n in enumerate(shape):
    if n > 1:
      index = index * jnp.uint32(n) + jax.lax.broadcasted_iota(jnp.uint32, shape, axis)
  x = hash32(seed.astype(jnp.uint32) ^ hash32(index))
  return (x >> 8).astype(jnp.int32) >= threshold(rate)  # 24 uniform bits: signed compare is safe


def apply(x: Array, rate: float, seed: Array | None, site: int,
          broadcast_dims: Sequence[int] = ()) -> Array:
  """Inverted dropout of `x` at `rate` (flax's `nn.Dropout` maths); `seed` None: identity.

  `broadcast_dims` share one mask value along those axes (T5X: `(-2,)`, along the length).
  """
  if seed is None or rate == 0.0:
    return x
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f"dropout rate must be in [0, 1], got {rate}.")
  if rate == 1.0:
    return jnp.zeros_like(x)
  shape = list(x.shape)
  for d in broadcast_dims:
    shape[d] = 1
  keep = keep_mask(site_seed(seed, site), shape, rate)
  return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))
