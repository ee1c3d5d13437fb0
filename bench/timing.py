"""Wall-clock timing of a jitted JAX call for the probes (`probe_*.py`)."""
from __future__ import annotations

import time


def ms_per_call(fn, *args, steps: int, warmup: int = 1) -> float:
  """Milliseconds per call of `fn(*args)` over `steps` calls, after `warmup` calls (compile and
  first run); waits for the device at both ends."""
  import jax
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  t = time.perf_counter()
  for _ in range(steps):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / steps * 1e3
