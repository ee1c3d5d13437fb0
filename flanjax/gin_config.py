"""gin for flanjax's entry points: config objects, flag parsing, clear errors.

Registered configurables: `T5Config`, `OptimizerConfig`, `get_config` (as `t5_config`) and the
entry point `train` (flanjax.train.train; call it through `gin.get_configurable("train")`). The packaged gin dir (repo gin/, installed as
flanjax/gin) is always a search path, so `--gin_file=models/t5_1_1_base.gin` works anywhere.

Flags shared by `flanjax train | eval | infer`:
  --gin_file=PATH (repeatable)  --gin.NAME=VALUE (repeatable, e.g. --gin.train.num_steps=100)
  --gin_search_paths=DIR[,DIR]  --model_dir=DIR  --tfds_data_dir=DIR
  --coordinator_address=HOST:PORT --num_processes=N --process_id=I   (multi-host; see distributed)

Errors name the binding (--gin.NAME=VALUE, with how to quote a string) or the gin file and its
own line. `flanjax train` writes the operative config to <model_dir>/config.gin, marked by its
first line (OPERATIVE_MARKER); a config.gin there without the marker (e.g. the user's own gin
file) is refused when the flags are parsed, before training, and never replaced.
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Sequence

import gin  # gin-config (the repo's gin/ folder holds config files and is not a package)
from flanjax.config import T5Config, get_config
from flanjax.errors import FlanjaxError, first_line
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
  if os.path.isabs(name):  # not looked up in the search paths: no near names to offer
    what = "is a folder" if os.path.isdir(name) else "does not exist"
    raise ConfigError(f"gin file {name!r} {what}; give the path of a .gin file.")
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


_SEARCH_PATHS: list[str] = []  # where `include` lines and --gin_file names are looked up


def _package_resource(path: str) -> str | None:
  """gin's "package.module/file.gin" resource path, resolved without gin's error log."""
  try:
    from gin import resource_reader
    p = resource_reader._parse_config_path(path)  # noqa: SLF001
  except Exception:  # noqa: BLE001 (not a package path)
    return None
  return p if os.path.isfile(p) else None


def _search_path_reader(path: str):
  """Opens a gin file (an `include`) from the cwd, flanjax's search paths or a package; a
  missing one raises a ConfigError with the closest names."""
  found = _package_resource(path) if os.path.isabs(path) else None
  if found is None:
    try:
      found = resolve_gin_file(path, _SEARCH_PATHS)
    except ConfigError:
      found = _package_resource(path)
      if found is None:
        raise
  return open(found)


def _search_path_exists(path: str) -> bool:
  """Claims every gin path that is not a plain file, so that gin's python-package reader never
  logs "ERROR:root:Path not found" for `include 'models/x.gin'` (found in a search path)."""
  return not os.path.isfile(path)


def _install_search_path_reader():
  """Puts flanjax's reader before gin's: `include 'models/x.gin'` is resolved against flanjax's
  search paths (cwd first, as gin does), and a missing include is one clear error."""
  from gin import config as gin_cfg
  readers = gin_cfg._FILE_READERS  # noqa: SLF001 (gin can only append a reader, after its own)
  if not any(r is _search_path_reader for r, _ in readers):
    readers.insert(0, (_search_path_reader, _search_path_exists))


def _syntax_message(err: SyntaxError, binding: str | None, file: str | None) -> str:
  """One line for a gin SyntaxError: the binding flag or the file and its own line."""
  msg = first_line(err.msg if isinstance(err.msg, str) else err)
  token = re.search(r"Failed to parse token '(.*)'", str(err))
  line = (err.text or "").strip()
  if binding is not None:
    where = f"gin binding --gin.{binding}"
    name = binding.split("=", 1)[0].strip()
  else:
    where = f"gin file {err.filename or file}, line {err.lineno}"
    name = line.split("=", 1)[0].strip()
    if line:
      where += f" ({line!r})"
  if token:
    value = token.group(1)
    example = (f"--gin.{name}=\"'{value}'\"" if binding is not None else f"{name} = '{value}'")
    return (f"{where}: {value!r} is not a gin value (a Python literal: 4, True, 'text', [...], "
            f"{{...}}, or a @reference); quote a string, e.g. {example}.")
  if binding is not None and "=" in binding and "'" not in binding and '"' not in binding:
    value = binding.split("=", 1)[1].strip()
    return (f"{where}: {msg} If {value!r} is a string, quote it, e.g. "
            f"--gin.{name}=\"'{value}'\".")
  return f"{where}: {msg}"


def _token_message(binding: str | None, file: str | None) -> str:
  """tokenize.TokenError: a bracket or string that is never closed."""
  if binding is not None:
    return f"gin binding --gin.{binding}: a bracket or string is never closed."
  return (f"gin file {file} (or a file it includes): a bracket or string is never closed before "
          "the end of the file.")


def _parse_one(parse, text, *, binding: str | None = None, file: str | None = None):
  import tokenize
  where = f"gin binding --gin.{binding}" if binding is not None else f"gin file {file}"
  try:
    parse(text)
  except SyntaxError as e:
    if e.filename and e.filename.endswith(".py"):  # in a module the gin file imports
      raise ConfigError(f"{where}: importing a module failed: {e.msg} ({e.filename}, line "
                        f"{e.lineno}).") from None
    raise ConfigError(_syntax_message(e, binding, file)) from None
  except ModuleNotFoundError as e:  # `import my_tasks` of a module that is not there
    found = re.search(r"No module named '([^']+)'", str(e))
    name = e.name or (found.group(1) if found else "?")
    loc = re.search(r'In file "([^"]+)", line (\d+)', str(e))
    if loc:
      where = f"gin file {loc.group(1)}, line {loc.group(2)}"
    stmt = re.search(r"^\s*import\s+([\w.]+)", str(e), re.M)
    imported = stmt.group(1) if stmt else name
    if imported == name or imported.startswith(name + "."):
      raise ConfigError(f"{where}: import: no module named {name!r} in the current folder "
                        f"({os.getcwd()}) or on the Python path; run from its folder or add "
                        "that folder to PYTHONPATH.") from None
    raise ConfigError(f"{where}: importing {imported} failed: no module named {name!r} (a "
                      "module it imports; install it).") from None
  except tokenize.TokenError:
    raise ConfigError(_token_message(binding, file)) from None
  except (ValueError, KeyError, TypeError, IOError) as e:
    if binding is not None:
      where = f"gin binding --gin.{binding}: "
    else:  # gin appends 'In file "F", line N' for each include level: the innermost first
      loc = re.search(r'In file "([^"]+)", line (\d+)', str(e))
      where = f"gin file {loc.group(1)}, line {loc.group(2)}: " if loc else f"gin file {file}: "
    explained = str(e).splitlines()[0] if isinstance(e, ConfigError) else _explain(e)
    if binding is not None and explained.startswith("gin binding "):
      where = ""  # already names it
    raise ConfigError(where + explained.removeprefix("gin: ")) from None


def parse_gin(gin_files: Sequence[str] = (), bindings: Sequence[str] = (),
              search_paths: Sequence[str] = ()) -> None:
  """Parses gin files and bindings (after clearing any earlier parse: a command run twice in one
  process, e.g. from a notebook, sees only its own); errors become one-line ConfigErrors that
  name the file and its line, or the binding, with close names and how to fix them."""
  register()
  gin.clear_config()
  paths = [p for p in search_paths if p] + [packaged_gin_dir()]
  for p in paths:
    if not os.path.isdir(p):
      raise ConfigError(f"--gin_search_paths entry {p!r} is not a directory.")
    gin.add_config_file_search_path(p)
  _SEARCH_PATHS[:] = paths
  _install_search_path_reader()
  files = [resolve_gin_file(f, paths) for f in gin_files]
  # One file / binding at a time (what gin.parse_config_files_and_bindings does), so an error
  # names the file or the binding, not a line of the bindings joined together.
  _BINDING_SOURCES.clear()
  for f in files:
    with _RecordSources(_shown_file(f)):
      _parse_one(gin.parse_config_file, f, file=f)
  for b in bindings:
    with _RecordSources(f"--gin.{b.strip()}"):
      _parse_one(gin.parse_config, b, binding=b)


# Where each model-config binding came from (a gin file as given, or a --gin flag), for the
# messages that refuse one: "T5Config.dropout_rate ... (bound in runs/pretrain_from_scratch.gin)".
_TRACKED = ("T5Config", "t5_config")
_BINDING_SOURCES: dict[str, str] = {}
_FROM_SCRATCH = os.path.join("runs", "pretrain_from_scratch.gin")


def _shown_file(path: str) -> str:
  """A packaged gin file as `--gin_file` names it (runs/x.gin), any other one as given."""
  packaged = packaged_gin_dir()
  if os.path.abspath(path).startswith(os.path.abspath(packaged) + os.sep):
    return os.path.relpath(path, packaged)
  return path


class _RecordSources:
  """Records, for each tracked binding that a parse adds or changes, where it came from."""

  def __init__(self, source: str):
    self.source = source

  @staticmethod
  def _snapshot() -> dict[str, object]:
    out = {}
    for name in _TRACKED:
      try:
        out.update({f"{name}.{k}": repr(v) for k, v in gin.get_bindings(name).items()})
      except (ValueError, KeyError):
        pass
    return out

  def __enter__(self):
    self.before = self._snapshot()

  def __exit__(self, *exc):
    for key, value in self._snapshot().items():
      if self.before.get(key) != value:
        _BINDING_SOURCES[key] = self.source
    return False


def binding_sources(keys: Sequence[str]) -> str:
  """' (bound in runs/x.gin)' for keys that parse_gin saw bound by gin files ('T5Config.a in
  a.gin, T5Config.b in b.gin' otherwise); '' when --gin flags bound them all."""
  files = {k: _BINDING_SOURCES[k] for k in keys
           if not _BINDING_SOURCES.get(k, "--gin.").startswith("--gin.")}
  if not files:
    return ""
  if len(files) == len(keys) and len(set(files.values())) == 1:
    return f" (bound in {next(iter(files.values()))})"
  return " (bound: " + ", ".join(f"{k} in {f}" for k, f in files.items()) + ")"


def bound_parameters(configurables: Sequence[str]) -> list[str]:
  """"NAME.param" for every parameter that the parsed gin config binds on `configurables`."""
  out = []
  for name in configurables:
    try:
      bindings = gin.get_bindings(name)
    except (ValueError, KeyError):  # not registered here: nothing can be bound on it
      continue
    out += [f"{name}.{param}" for param in sorted(bindings)]
  return out


def check_train_bindings() -> None:
  """Settles, before `train` runs, the config-object bindings it would otherwise drop unseen:
  - OptimizerConfig.* bindings are type-checked, and without `train.optimizer = @OptimizerConfig()`
    (the runs/*.gin files bind it; models/*.gin do not) that binding is added, so
    `--gin.OptimizerConfig.learning_rate=0.01` with a model file alone is used, not ignored;
  - T5Config.* / t5_config.* bindings that train.model_config does not read (it is unbound, so
    the model is a checkpoint's, or bound to the other one) are refused, naming what to bind
    instead."""
  import dataclasses

  from flanjax.config import check_field_types
  values = {}
  for f in dataclasses.fields(OptimizerConfig):
    try:
      value = gin.query_parameter(f"OptimizerConfig.{f.name}")
    except ValueError:  # not bound
      continue
    if not type(value).__module__.startswith("gin"):  # references and macros: checked when built
      values[f.name] = value
  check_field_types(OptimizerConfig, values)  # raises with the binding named
  if gin.get_bindings("OptimizerConfig") and bound_value("train", "optimizer") is None:
    gin.parse_config("train.optimizer = @OptimizerConfig()")
  ref = bound_value("train", "model_config")
  model = getattr(getattr(ref, "configurable", None), "name", None)
  for name in ("T5Config", "t5_config"):  # the two model-config configurables
    bound = gin.get_bindings(name)
    if not bound or model == name:
      continue
    keys = [f"{name}.{k}" for k in sorted(bound)]
    fields = ", ".join(keys)
    if ref is None:
      overrides = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in sorted(bound.items())
                                  if k != "size") + "}"
      fix = ("train.model_config is not bound, so the model is the checkpoint's (init_checkpoint "
             "or model_dir's). To change its "
             f"fields use --gin.train.model_overrides=\"{overrides}\"; for a new model add a "
             "model file (e.g. --gin_file=models/t5_1_1_base.gin).")
      if _FROM_SCRATCH in (_BINDING_SOURCES.get(k) for k in keys):
        fix += (f" {_FROM_SCRATCH} is for a random start (it binds T5Config fields for a "
                "models/*.gin file); to train from a checkpoint use runs/finetune.gin.")
    elif model == "T5Config":  # t5_config bound beside a models/*.gin file
      fix = ("train.model_config = @T5Config() (a models/*.gin file binds it), which reads "
             "T5Config bindings: bind the fields as --gin.T5Config.<field>=..., or build the "
             "model with --gin.train.model_config=@t5_config() and no model file.")
    elif model == "t5_config":
      fix = (f"train.model_config = @{model}(), which reads its own bindings: bind " +
             " ".join(f"--gin.{model}.{k}={v!r}" for k, v in sorted(bound.items())) +
             " instead.")
    else:
      fix = (f"train.model_config = {_show_binding(ref)}; only train.model_config = "
             f"@{name}() reads {name} bindings.")
    raise ConfigError(f"{fields} would be ignored{binding_sources(keys)}: {fix}")


def resolve_macro(value):
  """A gin binding's value through `%MACRO` references (e.g. `train.optimizer = %OPT` with
  `OPT = @OptimizerConfig()`); other values and references are returned as they are."""
  for _ in range(32):
    ref = getattr(value, "configurable", None)
    if getattr(ref, "name", None) != "macro":
      break
    scope = value.scoped_selector.rsplit("/", 1)[0]
    value = gin.query_parameter(f"{scope}/macro.value")
  return value


def bound_value(configurable: str, param: str, default=None):
  """The value gin binds to `configurable.param` (through macros), or `default` where it binds
  none."""
  try:
    return resolve_macro(gin.query_parameter(f"{configurable}.{param}"))
  except ValueError:
    return default


def _show_binding(value) -> str:
  name = getattr(getattr(value, "configurable", None), "name", None)
  if name:
    return f"@{name}()" if getattr(value, "evaluate", False) else f"@{name}"
  return repr(value)


OPERATIVE_CONFIG = "config.gin"
OPERATIVE_MARKER = "# flanjax operative config"
_GIN_OPERATIVE_HEADER = "# Parameters for "


def operative_config_path(model_dir: str) -> str:
  return os.path.join(model_dir, OPERATIVE_CONFIG)


def check_operative_config_target(model_dir: str) -> None:
  """Refuses a <model_dir>/config.gin that flanjax did not write (e.g. the user's own gin file):
  `flanjax train` replaces that file with the operative config. Call before training."""
  path = operative_config_path(model_dir)
  if os.path.isdir(path):
    raise ConfigError(f"{path} is a directory: flanjax writes the operative gin config there; "
                      "move it out of the model_dir.")
  if not os.path.exists(path):
    return
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      first = f.readline()
  except OSError as e:
    raise ConfigError(f"{path} cannot be read ({e}); flanjax writes the operative gin config "
                      "there: move it out of the model_dir.") from None
  # Before the marker, flanjax wrote gin's operative config text as it comes, which opens with
  # gin's own "# Parameters for ..." header, into model_dirs that hold flanjax_model.json.
  legacy = (first.startswith(_GIN_OPERATIVE_HEADER)
            and os.path.exists(os.path.join(model_dir, "flanjax_model.json")))
  if not first.startswith(OPERATIVE_MARKER) and not legacy:
    raise ConfigError(
        f"{path} was not written by flanjax (its first line is not '{OPERATIVE_MARKER}...'), "
        "and `flanjax train` writes its operative config there (it would be replaced): move it "
        f"out of the model_dir (e.g. mv {path} "
        f"{os.path.join(os.path.dirname(os.path.abspath(model_dir)), 'my_config.gin')}) and "
        "pass --gin_file=<its new path>.")


def write_operative_config(model_dir: str, command: str = "flanjax train"):
  """Writes the operative gin config (what was actually used) to <model_dir>/config.gin, with a
  first-line marker; never replaces a config.gin that flanjax did not write (ConfigError)."""
  check_operative_config_target(model_dir)
  os.makedirs(model_dir, exist_ok=True)
  path = operative_config_path(model_dir)
  with open(path + ".tmp", "w") as f:
    f.write(f"{OPERATIVE_MARKER}: what `{command}` used, rewritten on every run of this "
            "model_dir (copy it elsewhere to edit it).\n")
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


def add_common_flags(parser: argparse.ArgumentParser,
                     model_dir_help: str = "where checkpoints and metrics go"):
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin file (repeatable); relative to cwd or a search path, e.g. "
                           "models/t5_1_1_small.gin")
  parser.add_argument("--gin_search_paths", default="",
                      help="comma-separated extra directories to look for gin files in")
  parser.add_argument("--model_dir", default=None, help=model_dir_help)
  parser.add_argument("--tfds_data_dir", default=None, help="TFDS data directory")
  parser.add_argument("--coordinator_address", default=None,
                      help="multi-host: host:port of process 0")
  parser.add_argument("--num_processes", type=int, default=None, help="multi-host: process count")
  parser.add_argument("--process_id", type=int, default=None, help="multi-host: this process")
  parser.add_argument("--verbose", action="store_true", help="INFO logging")


def binding_flag(configurable: str, name: str, value) -> str:
  """`--gin.CONFIGURABLE.NAME=VALUE` as one shell argument for a Python `value`: a string
  quoted for gin and again for the shell (`="'x'"`; JSON in shell quotes where it holds
  quotes itself), anything else as its repr."""
  import json
  import shlex
  if not isinstance(value, str):
    text = repr(value)
  elif "'" not in value and '"' not in value:
    text = f"\"'{value}'\""
  else:
    text = shlex.quote(json.dumps(value))
  return f"--gin.{configurable}.{name}={text}"


def _train_argument_hints(unknown: Sequence[str], known: Sequence[str] = ()
                          ) -> dict[str, list[str]]:
  """{flag: [its gin binding]} for the unknown flags that name a train() argument, a T5Config or
  an OptimizerConfig field (`--num_steps 10` -> `--gin.train.num_steps=10`, `--scan_layers` ->
  `--gin.T5Config.scan_layers=True`; a value that is not a Python literal is quoted for gin, as
  a string)."""
  import ast
  import dataclasses
  import inspect

  from flanjax import train as train_lib
  from flanjax.config import T5Config
  targets = {}  # name -> (configurable, default)
  for cls in (OptimizerConfig, T5Config):
    targets.update({f.name: (cls.__name__, f.default) for f in dataclasses.fields(cls)})
  targets.update({n: ("train", p.default)
                  for n, p in inspect.signature(train_lib.train).parameters.items()})
  hints = {}
  for i, arg in enumerate(unknown):
    if not arg.startswith("--"):
      continue
    name, eq, value = arg[2:].partition("=")
    name = name.replace("-", "_")
    if name not in targets or f"--{name}" in known:  # `--model-dir`: the flag itself
      continue
    configurable, default = targets[name]
    if name == "optimizer":  # an OptimizerConfig, bound field by field
      configurable, name, default = "OptimizerConfig", "name", ""
    if not eq:
      nxt = unknown[i + 1] if i + 1 < len(unknown) else None
      value = (nxt if nxt is not None and not nxt.startswith("--")
               else "True" if isinstance(default, bool) else "VALUE")
    try:
      ast.literal_eval(value)
      hint = f"--gin.{configurable}.{name}={value}"  # a Python literal: as typed
    except (ValueError, SyntaxError):  # a string
      hint = (f"--gin.{configurable}.{name}=VALUE" if value == "VALUE"
              else binding_flag(configurable, name, value))
    hints[arg.split("=")[0]] = [hint]
  return hints


def parse_train_flags(argv: Sequence[str], prog: str = "flanjax train") -> argparse.Namespace:
  """Parses the trainer's flags (see the module docstring)."""
  bindings, rest = split_gin_flags(argv)
  from flanjax.cli import FlagParser  # one-line argparse errors; abbreviations refused
  parser = FlagParser(
      prog=prog, description="Train or fine-tune a T5 (gin-configured). Any train(...) "
      "argument can be set with --gin.train.NAME=VALUE.")
  add_common_flags(parser)
  args, unknown = parser.parse_known_args(rest)
  if unknown:
    flags = [a.split("=")[0] for a in unknown if a.startswith("-")]
    hints = parser.closest_flags(flags)
    # `--num_steps 10`: a train() argument (not over `--model-dir` -> `--model_dir`).
    hints.update(_train_argument_hints(unknown, parser.option_strings()))
    hint = "; ".join(f"{f} (did you mean {' or '.join(hints[f])}?)" if f in hints else f
                     for f in dict.fromkeys(flags))
    raise ConfigError(f"unknown flag(s) {hint or unknown}. Use --gin.train.NAME=VALUE for "
                      "train() arguments.")
  given = [a for a in rest if a == "--model_dir" or a.startswith("--model_dir=")]
  if len(given) > 1:  # argparse keeps the last one silently
    raise ConfigError(f"--model_dir is given {len(given)} times; give it once.")
  if args.model_dir and args.model_dir.startswith("-"):
    raise ConfigError(f"--model_dir={args.model_dir!r} is a flag, not a folder; the launch "
                      "scripts take MODEL_DIR first (launch/gpu_host.sh MODEL_DIR [flags...]).")
  args.gin_bindings = bindings
  args.gin_search_paths = [p for p in args.gin_search_paths.split(",") if p]
  if args.model_dir:  # before any training: the run would end by replacing it
    check_operative_config_target(args.model_dir)
  return args
