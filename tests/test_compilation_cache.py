"""flanjax commands turn on JAX's persistent compilation cache; the user's own setting wins."""
import os

CODE = """
import jax, jax.numpy as jnp
from flanjax import compilation_cache
print("DIR", compilation_cache.enable())
jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3)).block_until_ready()
"""


def _enable(python_runner, **env):
  env = {"JAX_COMPILATION_CACHE_DIR": "", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
         **env}
  out = python_runner(CODE, env=env).stdout
  return [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("DIR ")][0]


def test_cache_folder_from_env_default_off_and_jax_setting(python_runner, tmp_path):
  ours = tmp_path / "ours"
  assert _enable(python_runner, FLANJAX_COMPILATION_CACHE=str(ours)) == str(ours)
  assert os.listdir(ours)  # the compiled function was written
  assert _enable(python_runner, FLANJAX_COMPILATION_CACHE="off") == "None"
  assert _enable(python_runner, XDG_CACHE_HOME=str(tmp_path / "xdg")) == str(
      tmp_path / "xdg" / "flanjax" / "jax_compilation_cache")
  theirs = tmp_path / "theirs"
  assert _enable(python_runner, JAX_COMPILATION_CACHE_DIR=str(theirs),
                 FLANJAX_COMPILATION_CACHE=str(ours)) == str(theirs)
