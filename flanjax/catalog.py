"""`flanjax mixture NAME` (rates table) and `flanjax preview TASK -n 3` (rendered examples)."""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence

from flanjax.errors import FlanjaxError


def import_modules(names: Sequence[str]) -> None:
  """Imports user modules (e.g. the one registering your tasks) named by `--module NAME`."""
  for name in names:
    try:
      importlib.import_module(name)
    except ModuleNotFoundError as e:
      if e.name and (name == e.name or name.startswith(e.name + ".")):
        raise FlanjaxError(f"--module {name}: no module named {e.name!r} in the current "
                           f"folder ({os.getcwd()}) or on the Python path; run from its folder "
                           "or add that folder to PYTHONPATH.") from None
      raise FlanjaxError(f"--module {name}: importing it failed: {e}.") from None
    except SyntaxError as e:
      raise FlanjaxError(f"--module {name}: {e.msg} ({e.filename}, line {e.lineno}).") from None


def add_module_flag(parser: argparse.ArgumentParser) -> None:
  """Adds the repeatable `--module NAME` flag (see `import_modules`)."""
  parser.add_argument("--module", action="append", default=[], metavar="NAME",
                      help="Python module to import first, e.g. the one registering your tasks "
                           "or mixtures (repeatable)")


def add_tfds_data_dir_flag(parser: argparse.ArgumentParser) -> None:
  """Adds `--tfds_data_dir DIR`, where prepared TFDS datasets are read (see `set_tfds_data_dir`)."""
  parser.add_argument("--tfds_data_dir", default=None, metavar="DIR",
                      help="where the TFDS datasets are prepared (default: $TFDS_DATA_DIR, else "
                           "~/tensorflow_datasets)")


def set_tfds_data_dir(path: str | None) -> None:
  """Points seqio's TFDS sources at `path` (no-op for None)."""
  if path:
    import seqio
    seqio.set_tfds_data_dir_override(path)


def _names():
  import seqio

  import flanjax.mixtures  # noqa: F401  (registers the catalog)
  return list(seqio.TaskRegistry.names()), list(seqio.MixtureRegistry.names())


def _unknown(kind: str, name: str, known) -> FlanjaxError:
  close = difflib.get_close_matches(name, known, n=5)
  hint = f" Closest: {', '.join(close)}." if close else ""
  return FlanjaxError(f"unknown {kind} {name!r}.{hint}")


def mixture_table(name: str) -> list[tuple[str, str, int | None, int | None, float]]:
  """Rows (task, cluster, examples, cap, rate %) of a task or mixture, sorted by rate."""
  from flanjax import mixing, registration
  rates = mixing.effective_rates(name)
  rows = []
  for task, p in rates.items():
    info = registration.TASK_INFO.get(task)
    try:
      n = mixing.num_train_examples(task)
    except mixing.MixtureError:
      n = None
    cap = _cap_of(name, task)
    rows.append((task, info.cluster if info else "?", n, cap, 100.0 * p))
  rows.sort(key=lambda r: (-r[4], r[0]))
  return rows


def _cap_of(mixture: str, task: str) -> int | None:
  import seqio
  if mixture in seqio.TaskRegistry.names():
    return None
  mix = seqio.get_mixture_or_task(mixture)
  for sub, rate in mix.rate_per_task_name.items():
    name = getattr(rate, "__name__", "")
    if sub == task and "cap" in name:
      tail = name.rsplit("cap", 1)[1]
      return int(tail) if tail.isdigit() else None
    if sub != task and sub in seqio.MixtureRegistry.names():
      if task in {t.name for t in seqio.get_mixture_or_task(sub).tasks}:
        return _cap_of(sub, task)
  return None


def main_mixture(argv=None) -> int:
  from flanjax.cli import FlagParser
  p = FlagParser(prog="flanjax mixture",
                 description="Print a mixture's tasks and sampling rates.")
  p.add_argument("name")
  add_module_flag(p)
  add_tfds_data_dir_flag(p)
  args = p.parse_args(argv)
  set_tfds_data_dir(args.tfds_data_dir)
  import_modules(args.module)
  tasks, mixtures = _names()
  if args.name not in tasks and args.name not in mixtures:
    raise _unknown("mixture", args.name, mixtures + tasks)
  rows = mixture_table(args.name)
  w = max([len("task")] + [len(r[0]) for r in rows])
  c = max([len("cluster")] + [len(r[1]) for r in rows])
  print(f"{'task':<{w}}  {'cluster':<{c}}  {'examples':>9}  {'cap':>6}  {'rate (%)':>8}")
  for task, cluster, n, cap, rate in rows:
    print(f"{task:<{w}}  {cluster:<{c}}  {n if n is not None else '?':>9}  "
          f"{cap if cap is not None else '-':>6}  {rate:8.2f}")
  print(f"{len(rows)} task{'' if len(rows) == 1 else 's'}")
  return 0


def default_split(task: str) -> str:
  """The split `preview` reads when none is given: `train`, else (an evaluation-only task such
  as flan2021_wsc273 or a translation direction task) `validation`, else the task's first."""
  import seqio
  splits = list(seqio.get_mixture_or_task(task).splits)
  for split in ("train", "validation"):
    if split in splits:
      return split
  return splits[0] if splits else "train"


def preview(task: str, n: int = 3, split: str | None = None, seed: int = 0, num_shots: int = 0,
            mode: str = "instruction", template: int | None = None) -> list[tuple[str, str]]:
  """The first n rendered (inputs, targets) of a task's split (default: `default_split`),
  shuffled with seed; `template=i`: every example rendered with the task's template i (the
  `t<i>` of `flanjax eval --templates each`, the `template` of its predictions)."""
  import seqio

  from flanjax import registration
  name = task
  if num_shots or mode != "instruction" or template is not None:
    name = registration.task_variant(task, mode=mode, num_shots=num_shots, template=template)
  if n < 1:
    raise FlanjaxError(f"preview: n must be >= 1, got {n}.")
  t = seqio.get_mixture_or_task(name)
  if split is None:
    split = default_split(task)
  if split not in t.splits:
    close = difflib.get_close_matches(split, list(t.splits), n=3)
    raise FlanjaxError(f"Task {task!r} has no split {split!r}; splits: {', '.join(t.splits)}."
                       + (f" Closest: {', '.join(close)}." if close else ""))
  from flanjax import pipeline
  # A preprocessor's Python `if` on a tensor field (found building the dataset) or its int() on
  # a string tensor (found reading examples): one line naming the task and the cause.
  with pipeline.reading_examples(f"Task {task!r}"):
    ds = t.get_dataset({"inputs": 4096, "targets": 1024}, split=split, use_cached=False,
                       shuffle=True, seed=seed, num_epochs=1)
  out = []
  with pipeline.reading_examples(f"Task {task!r}"):
    for ex in ds.take(n).as_numpy_iterator():
      out.append((ex["inputs_pretokenized"].decode(), ex["targets_pretokenized"].decode()))
  return out


def main_preview(argv=None) -> int:
  from flanjax.cli import FlagParser
  p = FlagParser(prog="flanjax preview",
                 description="Print rendered inputs/targets of a task.")
  p.add_argument("task")
  p.add_argument("-n", type=int, default=3)
  p.add_argument("--split", default=None,
                 help="default: train, else validation (evaluation-only tasks)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--num_shots", type=int, default=0)
  p.add_argument("--mode", default="instruction", choices=["instruction", "no_template",
                                                           "dataset_name"])
  p.add_argument("--template", type=int, default=None,
                 help="render with this template only (default: one drawn per example); the "
                      "t<N> of `flanjax eval --templates each`")
  add_module_flag(p)
  add_tfds_data_dir_flag(p)
  args = p.parse_args(argv)
  set_tfds_data_dir(args.tfds_data_dir)
  import_modules(args.module)
  tasks, _ = _names()
  if args.task not in tasks:
    raise _unknown("task", args.task, tasks)
  if args.n < 1:
    raise FlanjaxError(f"-n must be a positive number of examples, got {args.n}.")
  split = args.split or default_split(args.task)
  for i, (inputs, targets) in enumerate(preview(args.task, args.n, split, args.seed,
                                                args.num_shots, args.mode, args.template)):
    print(f"=== {args.task} [{split}] example {i} ===")
    print(f"--- inputs ---\n{inputs}\n--- targets ---\n{targets}\n")
  return 0


if __name__ == "__main__":
  cmd = sys.argv[1] if len(sys.argv) > 1 else ""
  if cmd == "mixture":
    sys.exit(main_mixture(sys.argv[2:]))
  if cmd == "preview":
    sys.exit(main_preview(sys.argv[2:]))
  print("usage: python -m flanjax.catalog {mixture NAME | preview TASK [-n N]}", file=sys.stderr)
  sys.exit(2)
