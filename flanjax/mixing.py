"""Mixtures: examples-proportional with a cap, equal, temperature-scaled, and nested.

Rates (relative sampling weights, normalised by seqio):
- `examples_rate(cap=3000)`: min(n_train, cap) -- FLAN 2021's examples-proportional mixing.
- `temperature_rate(temperature, cap=None)`: min(n_train, cap) ** (1 / T) (T=1 is proportional).
- `equal_rate()`: 1 for every task.
n_train is the task's train size: the size of the prepared TFDS split (capped at the task's
max_train_examples) or, when the data is not prepared, TaskInfo.num_train_examples.

`register_mixture(name, tasks, rate=..., sub_mixtures=...)` registers a seqio.Mixture; nested
sub-mixtures ([(mixture_name, weight)]) are mixed Flan 2022 style: each sub-mixture's total
probability is its weight. `effective_rates(name)` flattens any mixture to per-task
probabilities (what the `flanjax mixture` table prints).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from flanjax.errors import FlanjaxError

DEFAULT_CAP = 3000


class MixtureError(FlanjaxError):
  """A mixture with an unknown or empty task."""


def num_train_examples(task_name: str) -> int:
  """The train size used for mixing (capped at the task's max_train_examples)."""
  from flanjax import registration
  info = registration.TASK_INFO.get(task_name)
  n = None
  try:
    import seqio
    n = seqio.get_mixture_or_task(task_name).num_input_examples("train")
  except (registration.DatasetNotPreparedError, NotImplementedError):
    # Not prepared, or a data source that cannot count its examples (seqio's DataSource base
    # raises NotImplementedError; flanjax's TFDS source returns None when TFDS does not know).
    n = None
  if n is None and info is not None:
    n = info.num_train_examples
  if n is None:
    raise MixtureError(f"Task {task_name!r}: unknown train size (the data is not prepared and "
                       "no num_train_examples was given at registration).")
  n = int(n)
  if info is not None and info.max_train_examples:
    n = min(n, info.max_train_examples)
  return n


def _name(task) -> str:
  return task if isinstance(task, str) else task.name


def _nonzero(task) -> int:
  n = num_train_examples(_name(task))
  if n <= 0:
    raise MixtureError(f"Task {_name(task)!r} has no training examples (zero-size): remove it "
                       "from the mixture or fix its train split.")
  return n


def _check_cap(cap) -> None:
  if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
    raise MixtureError(f"cap={cap!r} must be an integer >= 1 (or None for no cap).")


def examples_rate(cap: int | None = DEFAULT_CAP) -> Callable:
  """Rate fn: min(n_train, cap) (cap=None: uncapped examples-proportional)."""
  _check_cap(cap)

  def rate(task) -> float:
    n = _nonzero(task)
    return float(min(n, cap) if cap else n)
  rate.__name__ = f"examples_rate_cap{cap}"
  return rate


def temperature_rate(temperature: float = 1.0, cap: int | None = None) -> Callable:
  """Rate fn: min(n_train, cap) ** (1 / temperature)."""
  if temperature <= 0:
    raise MixtureError(f"temperature must be > 0, got {temperature}.")
  _check_cap(cap)

  def rate(task) -> float:
    n = _nonzero(task)
    return float(min(n, cap) if cap else n) ** (1.0 / temperature)
  rate.__name__ = f"temperature_rate_t{temperature}"
  return rate


def equal_rate() -> Callable:
  def rate(task) -> float:
    del task
    return 1.0
  return rate


def _check_tasks(name: str, tasks: Sequence[str]):
  import seqio
  known = list(seqio.TaskRegistry.names()) + list(seqio.MixtureRegistry.names())
  for t in tasks:
    if t not in known:
      close = difflib.get_close_matches(t, known, n=3)
      hint = f" Closest: {', '.join(close)}." if close else ""
      raise MixtureError(f"Mixture {name!r}: unknown task or mixture {t!r}.{hint}")


def register_mixture(name: str, tasks: Sequence[str] = (), *, rate: Callable | float | None = None,
                     sub_mixtures: Sequence[tuple[str, float]] = (), check_sizes: bool = False):
  """Registers a seqio.Mixture over `tasks` (rate fn, default examples_rate(3000)) and nested
  `sub_mixtures` [(mixture name, weight)]. check_sizes=True rejects zero-size tasks now."""
  import seqio
  tasks = list(tasks)
  if not tasks and not sub_mixtures:
    raise MixtureError(f"Mixture {name!r} has no tasks.")
  _check_tasks(name, tasks + [m for m, _ in sub_mixtures])
  rate = examples_rate(DEFAULT_CAP) if rate is None else rate
  if check_sizes:
    for t in tasks:
      if num_train_examples(t) <= 0:
        raise MixtureError(f"Mixture {name!r}: task {t!r} has no training examples.")
  entries = [(t, rate) for t in tasks]
  for m, w in sub_mixtures:
    # A sub-mixture's weight is on the scale of the direct tasks' rates: with only
    # sub-mixtures, weight w_i gives the sub-mixture probability w_i / sum(w).
    if w <= 0:
      raise MixtureError(f"Mixture {name!r}: sub-mixture {m!r} weight must be > 0, got {w}.")
    entries.append((m, float(w)))
  if name in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.remove(name)
  return seqio.MixtureRegistry.add(name, entries)


def effective_rates(name: str) -> dict[str, float]:
  """Per-task sampling probabilities of a task or (nested) mixture; they sum to 1."""
  import seqio
  if name in seqio.TaskRegistry.names():
    return {name: 1.0}
  mix = _get_mixture(name)
  total = 0.0
  raw = {}
  for sub, r in mix.rate_per_task_name.items():
    obj = mix._task_map[sub]  # noqa: SLF001 (seqio keeps the sub-providers here)
    val = float(r(obj) if callable(r) else r)
    raw[sub] = val
    total += val
  if total <= 0:
    raise MixtureError(f"Mixture {name!r}: all rates are zero.")
  out: dict[str, float] = {}
  for sub, val in raw.items():
    for t, p in effective_rates(sub).items():
      out[t] = out.get(t, 0.0) + p * val / total
  return out


def _get_mixture(name: str):
  import seqio
  if name not in seqio.MixtureRegistry.names():
    known = list(seqio.MixtureRegistry.names())
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Closest: {', '.join(close)}." if close else ""
    raise MixtureError(f"Unknown mixture {name!r}.{hint}")
  return seqio.get_mixture_or_task(name)
