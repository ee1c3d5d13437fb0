"""Shared pytest setup.

Device count: tests run with the default device count (1 CPU device). Tests that need several
devices (mesh equivalence, restore onto another mesh, multi-host) start subprocesses with
XLA_FLAGS=--xla_force_host_platform_device_count=N, because XLA_FLAGS must be set before jax is
imported and a session-wide setting would change every other test's device count.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import jax
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Subprocesses run outside the repository: `python -c` / `python -m` put the working directory
# on sys.path, and from the repo root that would import the source tree instead of the
# installed package (where tasks/ and mixtures/ live under flanjax/).
NEUTRAL_CWD = tempfile.mkdtemp(prefix="flanjax_test_cwd_")
atexit.register(shutil.rmtree, NEUTRAL_CWD, True)  # one per session: not left in /tmp

# A persistent XLA compilation cache shared by the tests and their subprocesses: the trainer
# tests compile the same tiny train step many times (it does not change numerics: a cache hit
# loads the executable the compiler would have produced).
CACHE_ENV = {
    "JAX_COMPILATION_CACHE_DIR": os.environ.get(
        "FLANJAX_TEST_JAX_CACHE", os.path.join("/tmp", f"flanjax_test_jax_cache_{os.getuid()}")),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}
jax.config.update("jax_compilation_cache_dir", CACHE_ENV["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def assert_grads_close(grads, ref):
  """Every leaf of `grads` against the same path of `ref`: rtol 1e-4, atol 1e-5 of the leaf's
  largest magnitude (named by path on failure)."""
  import numpy as np
  for path, a in jax.tree_util.tree_leaves_with_path(grads):
    b = ref
    for key in path:
      b = b[key.key]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(b))) + 1e-7,
                               err_msg=jax.tree_util.keystr(path))


def truncate_arrays(step_dir):
  """Damages a checkpoint step: every data file of its `params` item cut to 10 bytes."""
  for root, _, files in os.walk(os.path.join(step_dir, "params")):
    if os.path.basename(root) == "d":
      for name in files:
        os.truncate(os.path.join(root, name), 10)


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: takes more than ~30 s on 2 CPU cores")


def run_python(code: str, *, devices: int = 1, env: dict | None = None, timeout: int = 300,
               cwd: str | None = None) -> subprocess.CompletedProcess:
  """Runs `code` in a fresh python with `devices` fake CPU devices; raises with its output on
  failure."""
  full_env = dict(os.environ)
  full_env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  full_env["JAX_PLATFORMS"] = "cpu"
  full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  full_env.update(CACHE_ENV)
  full_env.update(env or {})
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env=full_env, timeout=timeout, cwd=cwd or NEUTRAL_CWD)
  if proc.returncode != 0:
    raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                         f"{proc.stderr[-6000:]}")
  return proc


@pytest.fixture
def python_runner():
  return run_python


@pytest.fixture
def decode_settings(monkeypatch):
  """The (method, num_beams, alpha) of every decoding.predict call, in a list."""
  from flanjax import decoding
  seen, predict = [], decoding.predict

  def spy(*args, **kw):
    seen.append((kw["method"], kw["num_beams"], kw["alpha"]))
    return predict(*args, **kw)
  monkeypatch.setattr(decoding, "predict", spy)
  return seen
