"""gin for flanjax's entry points: config objects, flag parsing, clear errors.

Registered configurables: `T5Config`, `OptimizerConfig`, `get_config` (as `t5_config`) and the
entry point `train` (flanjax.train.train; call it through `gin.get_configurable("train")`). The packaged gin dir (repo gin/, installed as
flanjax/gin) is always a search path, so `--gin_file=models/t5_1_1_base.gin` works anywhere.

Flags shared by `flanjax train | eval | infer`:
  --gin_file=PATH (repeatable)  --gin.NAME=VALUE (repeatable, e.g. --gin.train.num_steps=100)
  --gin_search_paths=DIR[,DIR]  --model_dir=DIR  --tfds_data_dir=DIR
  --coordinator_address=HOST:PORT --num_processes=N --process_id=I   (multi-host; see distributed)
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Sequence

import gin  # gin-config (the repo's gin/ folder holds config files and is not a package)
from flanjax.config import T5Config, get_config
from flanjax.errors import FlanjaxError
from flanjax.optimizers import OptimizerConfig

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


class ConfigError(FlanjaxError):
  """A gin file or binding that does not exist or does not parse."""


def packaged_gin_dir() -> str:
  """The directory of flanjax's gin files: flanjax/gin when installed, the repo's gin/ when
  installed in editable mode (setup.py maps gin/ to flanjax/gin)."""
  candidates = [os.path.join(_PKG_DIR, "gin")]
  repo = os.path.dirname(_PKG_DIR)
  # Editable install: the repo's gin/ (only in a source checkout, never site-packages/gin,
  # which is gin-config's own package).
  if os.path.exists(os.path.join(repo, "setup.py")):
    candidates.append(os.path.join(repo, "gin"))
  for d in candidates:
    if os.path.isdir(os.path.join(d, "models")):
      return d
  raise ConfigError(f"flanjax's gin files are missing (looked in {_PKG_DIR}/gin); "
                    "reinstall flanjax with `pip install .`.")


_REGISTERED = False


def register():
  """Registers the config objects with gin (idempotent)."""
  global _REGISTERED
  if _REGISTERED:
    return
  gin.external_configurable(T5Config, "T5Config")
  gin.external_configurable(OptimizerConfig, "OptimizerConfig")
  gin.external_configurable(get_config, "t5_config")
  from flanjax import train as train_lib  # the entry point is plain Python; gin wraps it here
  gin.external_configurable(train_lib.train, "train", denylist=["eval_fn"])
  _REGISTERED = True


def _all_gin_files(search_paths: Sequence[str]) -> list[str]:
  out = []
  for root in search_paths:
    for dirpath, _, files in os.walk(root):
      out += [os.path.relpath(os.path.join(dirpath, f), root) for f in files if f.endswith(".gin")]
  return sorted(set(out))


def resolve_gin_file(name: str, search_paths: Sequence[str]) -> str:
  """The path of gin file `name` (absolute, relative to cwd, or to a search path)."""
  if os.path.isfile(name):
    return os.path.abspath(name)
  for root in search_paths:
    p = os.path.join(root, name)
    if os.path.isfile(p):
      return p
  known = _all_gin_files(search_paths)
  close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
  hint = f" Closest: {', '.join(close)}." if close else f" Available: {', '.join(known[:12])}."
  raise ConfigError(f"gin file {name!r} not found in the current directory or the search paths "
                    f"{list(search_paths)}.{hint}")


def _configurable_names() -> list[str]:
  from gin import config as gin_cfg
  names = []
  for key, _ in gin_cfg._REGISTRY.items():  # noqa: SLF001 (gin offers no public listing)
    names.append(key.split(".")[-1] if isinstance(key, str) else str(key))
  return names


def _configurable_params(name: str) -> list[str]:
  import inspect

  from gin import config as gin_cfg
  try:
    selector = gin_cfg._REGISTRY.get_match(name)  # noqa: SLF001
    fn = selector.wrapped if selector else None
    return list(inspect.signature(fn).parameters) if fn else []
  except Exception:  # noqa: BLE001
    return []


def _explain(err: Exception) -> str:
  msg = str(err).splitlines()[0] if str(err) else repr(err)
  m = re.search(r"No configurable matching '([^']+)'", str(err))
  if m:
    name = m.group(1)
    close = difflib.get_close_matches(name, _configurable_names(), n=3, cutoff=0.5)
    return (f"unknown gin configurable {name!r}" +
            (f"; did you mean {', '.join(close)}?" if close else
             f"; known: {', '.join(sorted(set(_configurable_names()))[:15])}."))
  m = re.search(r"Configurable '([^']+)' doesn't have a parameter named '([^']+)'", str(err))
  if m:
    cfg, param = m.groups()
    params = _configurable_params(cfg)
    close = difflib.get_close_matches(param, params, n=3, cutoff=0.5)
    return (f"gin binding {cfg}.{param}: {cfg} has no parameter {param!r}" +
            (f"; did you mean {', '.join(close)}?" if close else
             f"; its parameters: {', '.join(params)}."))
  return f"gin: {msg}"


def parse_gin(gin_files: Sequence[str] = (), bindings: Sequence[str] = (),
              search_paths: Sequence[str] = ()) -> None:
  """Parses gin files and bindings; errors become one-line ConfigErrors with close names."""
  register()
  paths = [p for p in search_paths if p] + [packaged_gin_dir()]
  for p in paths:
    if not os.path.isdir(p):
      raise ConfigError(f"--gin_search_paths entry {p!r} is not a directory.")
    gin.add_config_file_search_path(p)
  files = [resolve_gin_file(f, paths) for f in gin_files]
  try:
    gin.parse_config_files_and_bindings(files, list(bindings), finalize_config=False)
  except (ValueError, KeyError, SyntaxError, TypeError, IOError) as e:
    raise ConfigError(_explain(e)) from None


def write_operative_config(model_dir: str):
  """Writes the operative gin config (what was actually used) to <model_dir>/config.gin."""
  os.makedirs(model_dir, exist_ok=True)
  path = os.path.join(model_dir, "config.gin")
  with open(path + ".tmp", "w") as f:
    f.write(gin.operative_config_str())
  os.replace(path + ".tmp", path)


def split_gin_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """Pulls `--gin.NAME=VALUE` (or `--gin.NAME VALUE`) out of argv; returns (bindings, rest)."""
  bindings, rest = [], []
  it = iter(range(len(argv)))
  skip = set()
  for i in it:
    if i in skip:
      continue
    a = argv[i]
    if a.startswith("--gin.") and not a.startswith("--gin_"):
      body = a[len("--gin."):]
      if "=" in body:
        name, value = body.split("=", 1)
      elif i + 1 < len(argv):
        name, value = body, argv[i + 1]
        skip.add(i + 1)
      else:
        raise ConfigError(f"{a}: give a value, e.g. {a}=VALUE.")
      bindings.append(f"{name}={value}")
    else:
      rest.append(a)
  return bindings, rest


def add_common_flags(parser: argparse.ArgumentParser):
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin file (repeatable); relative to cwd or a search path, e.g. "
                           "models/t5_1_1_small.gin")
  parser.add_argument("--gin_search_paths", default="",
                      help="comma-separated extra directories to look for gin files in")
  parser.add_argument("--model_dir", default=None, help="where checkpoints and metrics go")
  parser.add_argument("--tfds_data_dir", default=None, help="TFDS data directory")
  parser.add_argument("--coordinator_address", default=None,
                      help="multi-host: host:port of process 0")
  parser.add_argument("--num_processes", type=int, default=None, help="multi-host: process count")
  parser.add_argument("--process_id", type=int, default=None, help="multi-host: this process")
  parser.add_argument("--verbose", action="store_true", help="INFO logging")


def parse_train_flags(argv: Sequence[str], prog: str = "flanjax train") -> argparse.Namespace:
  """Parses the trainer's flags (see the module docstring)."""
  bindings, rest = split_gin_flags(argv)
  parser = argparse.ArgumentParser(
      prog=prog, description="Train or fine-tune a T5 (gin-configured). Any train(...) "
      "argument can be set with --gin.train.NAME=VALUE.")
  add_common_flags(parser)
  args, unknown = parser.parse_known_args(rest)
  if unknown:
    flags = [a.split("=")[0] for a in unknown if a.startswith("-")]
    known = [o for a in parser._actions for o in a.option_strings]  # noqa: SLF001
    hints = {f: difflib.get_close_matches(f, known, n=1) for f in flags}
    hint = "; ".join(f"{f} (did you mean {h[0]}?)" if h else f for f, h in hints.items())
    raise ConfigError(f"unknown flag(s) {hint or unknown}. Use --gin.train.NAME=VALUE for "
                      "train() arguments.")
  args.gin_bindings = bindings
  args.gin_search_paths = [p for p in args.gin_search_paths.split(",") if p]
  return args
