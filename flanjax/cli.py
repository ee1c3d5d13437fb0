"""The `flanjax` command: a thin dispatcher over the importable entry points.

Each subcommand is `module:function(argv)` in the library; this file only routes, prints
user errors on one line (FLANJAX_TRACEBACK=1 shows the stack trace instead), and keeps start-up
cheap (modules are imported on use).
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import math
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

# Commands that read seqio tasks or vocabularies (and so TensorFlow).
_DATA_COMMANDS = ("quickstart", "train", "eval", "infer", "heldout", "mixture", "preview")
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


def int_at_least(minimum: int):
  """An argparse `type` for integers >= `minimum`: `--batch_size 0` is refused naming the flag."""
  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
      raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
    return value
  parse.__name__ = f"integer >= {minimum}"
  return parse


positive_int = int_at_least(1)


def float_at_least(minimum: float, maximum: float = math.inf, want: str | None = None):
  """An argparse `type` for finite numbers in [minimum, maximum] (`want` says which, e.g. "a
  number >= 0"): `--alpha -1` is refused naming the flag."""
  want = want or f"a number >= {minimum:g}"

  def parse(text: str) -> float:
    try:
      value = float(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and minimum <= value <= maximum):
      raise argparse.ArgumentTypeError(f"must be {want}, got {text}")
    return value
  parse.__name__ = want.removeprefix("a ")
  return parse


# A number in [0, 1] (e.g. --contamination_threshold 0.01).
fraction = float_at_least(0.0, 1.0, "a fraction in [0, 1]")


class FlagParser(argparse.ArgumentParser):
  """The argparse parser of every flanjax command: a mistake is reported on one line.

  `flanjax eval: error: unrecognized arguments: --max_exampels 3. Did you mean --max_examples?
  Run 'flanjax eval --help' for the flags.` (one line) and exit status 2, instead of argparse's
  usage block. Abbreviated flags are refused (allow_abbrev=False) with the full name suggested,
  rather than silently expanded (`--template each` had run `--templates each`). `--help` is
  argparse's own.
  """

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("allow_abbrev", False)
    super().__init__(*args, **kwargs)
    self._unrecognized: list[str] = []
    self._given: list[str] = []

  def option_strings(self) -> list[str]:
    return [o for a in self._actions for o in a.option_strings]

  def closest_flags(self, args: list[str]) -> dict[str, list[str]]:
    """{flag: the closest valid flag names} for the flag-like items of `args` (`--x=1` -> `--x`):
    the flags it abbreviates (`--max` -> `--max_examples`, `--max_decode_length`), else difflib's
    closest and those as close as it (`--max_exampels` -> `--max_examples`)."""
    known = self.option_strings()
    hints = {}
    for arg in args:
      if not arg.startswith("-") or arg == "-" or _is_number(arg):
        continue
      flag = arg.split("=", 1)[0]
      close = [o for o in known if o.startswith(flag) and o != flag] if len(flag) > 2 else []
      if not close:
        ratio = {o: difflib.SequenceMatcher(None, flag, o).ratio()
                 for o in difflib.get_close_matches(flag, known, n=3)}
        close = [o for o, r in ratio.items() if r >= max(ratio.values()) - 0.05]
      if close:
        hints[flag] = close[:3]
    return hints

  def parse_args(self, args=None, namespace=None):
    self._given = list(sys.argv[1:] if args is None else args)
    namespace, extras = self.parse_known_args(args, namespace)
    if extras:
      self._unrecognized = extras
      self.error(f"unrecognized arguments: {' '.join(extras)}")
    return namespace

  def error(self, message: str):
    hint = ""
    if "required" in message and not self._unrecognized:
      # A misspelt required flag: argparse names the missing one, not the misspelling.
      known = set(self.option_strings())
      self._unrecognized = [a for a in self._given
                            if a.startswith("--") and a.split("=", 1)[0] not in known]
      if self._unrecognized:
        message = (f"unrecognized arguments: {' '.join(self._unrecognized)} (and "
                   f"{message.rstrip('.')})")
    if message.startswith("unrecognized arguments:") and self._unrecognized:
      hints = self.closest_flags(self._unrecognized)
      parts = [(f"{flag}: d" if len(hints) > 1 else "D") + f"id you mean {' or '.join(close)}?"
               for flag, close in hints.items()]
      if parts:
        hint = " " + " ".join(parts)
      if any(o.startswith(f) for f, close in hints.items() for o in close):
        hint += " Flags are not abbreviated."
    message = message.replace("\n", " ").rstrip(".")
    self.exit(2, f"{self.prog}: error: {message}.{hint} "
                 f"Run '{self.prog} --help' for the flags.\n")


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


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
  absl_logger = logging.getLogger("absl")
  absl_logger.setLevel(logging.ERROR)
  # seqio logs this ERROR before re-raising a sub-task's error, which the command then reports
  # on one line of its own (naming the task or dataset).
  absl_logger.addFilter(lambda record: not str(record.msg).startswith("Failed to load task"))
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


def _module_path(rest: list[str]) -> None:
  """Puts the working directory first on sys.path when `--module` or a gin file is given (gin
  files `import my_tasks` to register tasks), as `python -m` does.

  The console script's sys.path[0] is its bin/ folder, so `--module my_tasks` would otherwise
  not find my_tasks.py in the folder the command runs from.
  """
  if any(a.split("=", 1)[0] in ("--module", "--gin_file")
         or a.startswith("--gin.") for a in rest):
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
      sys.path.insert(0, cwd)


def _flag_value(rest: list[str], flag: str, default: str | None = None) -> str | None:
  parser = argparse.ArgumentParser(add_help=False)
  parser.add_argument(flag, default=default)
  try:
    args, _ = parser.parse_known_args(rest)
  except SystemExit:
    return default
  return getattr(args, flag.lstrip("-"))


def _train_model_dir(rest: list[str]) -> str | None:
  """The --model_dir of a `flanjax train` command line, else its gin binding train.model_dir."""
  model_dir = _flag_value(rest, "--model_dir")
  if model_dir:
    return model_dir
  gin_config = sys.modules.get("flanjax.gin_config")
  try:
    return gin_config.gin.query_parameter("train.model_dir") if gin_config else None
  except Exception:  # noqa: BLE001  (not bound, or gin not parsed yet)
    return None


def _interrupted_message(name: str, rest: list[str]) -> str:
  """What Ctrl-C left behind: the last saved checkpoint and how to resume."""
  msg = f"flanjax {name}: interrupted."
  if name == "train":
    model_dir = _train_model_dir(rest)
  elif name == "quickstart":
    from flanjax import quickstart
    model_dir = os.path.join(_flag_value(rest, "--output_dir", quickstart.DEFAULT_OUTPUT_DIR),
                             "model")
  elif name == "heldout":
    return (msg + " Re-run the same command to resume: finished stages are skipped and training "
            "resumes from the last checkpoint in <output_dir>/<cluster>/model.")
  else:
    return msg
  if not model_dir:
    return msg + " Re-run the same command to resume from the last saved checkpoint."
  from flanjax import checkpoints
  model_dir = os.path.abspath(model_dir)
  try:
    steps = checkpoints.finalized_steps(model_dir)
  except OSError:
    steps = []
  if steps:
    return (msg + f" The last saved checkpoint is step {steps[-1]} in {model_dir}; re-run the "
            "same command to resume from it.")
  return (msg + f" No checkpoint was saved in {model_dir} yet; re-running the same command "
          "starts from the beginning.")


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
  _module_path(rest)
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
    print(_interrupted_message(name, rest), file=sys.stderr)
    return 130
  return int(result or 0)


if __name__ == "__main__":
  sys.exit(main())
