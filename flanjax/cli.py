"""The `flanjax` command: a thin dispatcher over the importable entry points.

Each subcommand is `module:function(argv)` in the library; this file only routes, prints
user errors on one line (FLANJAX_TRACEBACK=1 shows the stack trace instead), and keeps start-up
cheap (modules are imported on use).
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys

# name -> (module, function, one-line help)
COMMANDS = {
    "quickstart": ("flanjax.quickstart", "main",
                   "train + evaluate a tiny T5 on the built-in offline collection (CPU, no download)"),
    "train": ("flanjax.train", "main", "train or fine-tune a T5 on a mixture (gin-configured)"),
    "eval": ("flanjax.evaluation", "main", "evaluate a checkpoint on a task or mixture"),
    "infer": ("flanjax.infer", "main", "predict or score rows of a JSONL file with a checkpoint"),
    "heldout": ("flanjax.heldout", "main",
                "the FLAN experiment: train without a cluster, evaluate zero-shot on it"),
    "convert": ("flanjax.convert", "main",
                "convert Hugging Face / T5X checkpoints to and from flanjax"),
    "mixture": ("flanjax.catalog", "main_mixture", "print a mixture's tasks, sizes and rates"),
    "preview": ("flanjax.catalog", "main_preview", "print rendered examples of a task"),
}

# Commands that read seqio tasks (and so TensorFlow).
_DATA_COMMANDS = ("quickstart", "train", "eval", "heldout", "mixture", "preview")
# Commands that compile models: they use the persistent compilation cache
# (flanjax/compilation_cache.py; FLANJAX_COMPILATION_CACHE=off turns it off).
_COMPILING_COMMANDS = ("quickstart", "train", "eval", "infer", "heldout")

USAGE = """usage: flanjax <command> [flags]   (flanjax <command> --help for its flags)

FLAN-style instruction tuning of T5 in JAX.

commands:
{commands}

examples:
  flanjax quickstart --output_dir /tmp/flanjax_quickstart
  flanjax mixture flan2021_without_nli
  flanjax train --gin_file=runs/finetune.gin --model_dir=/tmp/run
"""


def _usage() -> str:
  width = max(len(n) for n in COMMANDS)
  lines = [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
  return USAGE.format(commands="\n".join(lines))


def _user_error_types() -> tuple[type, ...]:
  from flanjax.errors import FlanjaxError
  types: list[type] = [FlanjaxError, FileNotFoundError, FileExistsError, NotADirectoryError]
  gin_config = sys.modules.get("flanjax.gin_config")
  if gin_config is not None and hasattr(gin_config, "ConfigError"):
    types.append(gin_config.ConfigError)
  return tuple(types)


def _quiet_libraries(command: str) -> None:
  """Keeps TensorFlow's C++ logs and absl's INFO/WARNING chatter off the console.

  FLANJAX_VERBOSE=1 restores them.
  """
  if os.environ.get("FLANJAX_VERBOSE"):
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import logging
  logging.getLogger("absl").setLevel(logging.ERROR)
  if command in _DATA_COMMANDS and importlib.util.find_spec("tensorflow") is not None:
    # TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) ignore TF_CPP_MIN_LOG_LEVEL: import
    # it once with the stderr file descriptor pointed at /dev/null. Python errors still surface.
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    try:
      import tensorflow  # noqa: F401
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      os.close(devnull)


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(_usage())
    return 0
  if argv[0] == "--version":
    from flanjax import __version__
    print(f"flanjax {__version__}")
    return 0
  name, rest = argv[0], argv[1:]
  if name not in COMMANDS:
    close = difflib.get_close_matches(name, COMMANDS, n=2, cutoff=0.4)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    print(f"flanjax: unknown command {name!r}.{hint} Commands: {', '.join(COMMANDS)}.",
          file=sys.stderr)
    return 2
  module_name, fn_name, _ = COMMANDS[name]
  _quiet_libraries(name)
  fn = getattr(importlib.import_module(module_name), fn_name)
  if name in _COMPILING_COMMANDS and not any(a in ("-h", "--help") for a in rest):
    from flanjax import compilation_cache
    compilation_cache.enable()
  try:
    result = fn(rest)
  except _user_error_types() as e:
    if os.environ.get("FLANJAX_TRACEBACK"):
      raise
    # gin appends "In call to configurable ..." lines to errors raised inside configurables.
    msg = "\n".join(line for line in str(e).splitlines()
                    if not line.strip().startswith("In call to configurable"))
    print(f"flanjax {name}: error: {msg}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f"flanjax {name}: interrupted.", file=sys.stderr)
    return 130
  return int(result or 0)


if __name__ == "__main__":
  sys.exit(main())
