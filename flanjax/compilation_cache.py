"""JAX's persistent compilation cache for flanjax commands.

A restarted (or resumed) run loads its compiled train step from disk instead of compiling it
again: T5-large's unscanned step compiles in 80-210 s on an H100, every restart. The `flanjax`
commands turn the cache on (library calls such as `flanjax.train.train` leave JAX's settings
alone):

- `$FLANJAX_COMPILATION_CACHE`: a folder, or `off`; default `~/.cache/flanjax/jax_compilation_cache`
  (under `$XDG_CACHE_HOME` when set), capped at 10 GiB (least recently used entries go first);
- a cache folder the user already gave JAX (`JAX_COMPILATION_CACHE_DIR` or `jax.config`) wins.
"""
from __future__ import annotations

import os
import sys

ENV = "FLANJAX_COMPILATION_CACHE"
MAX_BYTES = 10 * 2**30


def default_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "flanjax", "jax_compilation_cache")


def enable(path: str | None = None) -> str | None:
  """Turns on the persistent compilation cache; returns the folder in use, or None when off.

  `path` (else `$FLANJAX_COMPILATION_CACHE`, else `default_dir()`) is used unless JAX already has
  a cache folder; "off" (or "none", "0") leaves the cache off.
  """
  import jax
  existing = jax.config.jax_compilation_cache_dir
  if existing:
    return existing
  choice = path if path is not None else os.environ.get(ENV, "")
  if choice.strip().lower() in ("off", "none", "0", "false"):
    return None
  folder = os.path.abspath(os.path.expanduser(choice or default_dir()))
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:  # a read-only home must not stop a run: compile as usual
    print(f"flanjax: compilation cache {folder} is not writable ({e}); set {ENV} to a "
          f"writable folder or to 'off'. Continuing without it.", file=sys.stderr)
    return None
  jax.config.update("jax_compilation_cache_dir", folder)
  if jax.config.jax_compilation_cache_max_size == -1:
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
  return folder
