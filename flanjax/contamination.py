"""Contamination check: n-gram (default 13-gram) overlap between eval inputs and training inputs.

An eval example is *contaminated* when any of its n-grams also occurs in the training inputs
(texts shorter than n tokens count as one gram of all their tokens, so exact duplicates are
caught). Instruction templates repeat the same long phrases in many examples of a task; n-grams
found in more than `max_train_doc_fraction` of one training task's texts (and in at least 3) are
treated as template boilerplate and ignored, so instructions that an eval template shares with a
training template do not make its examples look contaminated. The fraction is taken per task
(`NgramIndex.add_all` adds one task's texts): of a whole mixture, one task's phrasing is a small
share.

Pure Python; `mixture_inputs` / `task_texts` import seqio lazily.
"""
from __future__ import annotations

import collections
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_N = 13
DEFAULT_THRESHOLD = 0.01  # warn when more than 1% of a task's eval examples overlap
_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str | bytes) -> list[str]:
  """Lower-cased word tokens (punctuation and spacing dropped)."""
  if isinstance(text, bytes):
    text = text.decode("utf-8", errors="replace")
  return _TOKEN.findall(text.lower())


def ngram_hashes(text: str | bytes, n: int = DEFAULT_N) -> set[int]:
  """Hashes of the n-grams of `text` (one gram of all tokens when shorter than n)."""
  if n < 1:
    raise ValueError(f"n-gram size must be at least 1, got {n}.")
  toks = tokens(text)
  if not toks:
    return set()
  if len(toks) < n:
    return {hash(tuple(toks))}
  return {hash(tuple(toks[i:i + n])) for i in range(len(toks) - n + 1)}


class NgramIndex:
  """The n-grams of training texts, added a task at a time, with document frequencies."""

  _MIN_BOILERPLATE_DOCS = 3  # a phrase in 1-2 texts of a task is content, however small the task

  def __init__(self, n: int = DEFAULT_N):
    self.n = n
    self.doc_freq: collections.Counter[int] = collections.Counter()
    self.num_docs = 0
    # Each task's number of texts and its n-grams found in _MIN_BOILERPLATE_DOCS or more of them.
    self._tasks: list[tuple[int, dict[int, int]]] = []

  def add_all(self, texts: Iterable[str | bytes]) -> "NgramIndex":
    """Adds one task's texts (its phrasing is judged against its own texts: `boilerplate`)."""
    task: collections.Counter[int] = collections.Counter()
    docs = 0
    for text in texts:
      grams = ngram_hashes(text, self.n)
      task.update(grams)
      docs += 1
    self.doc_freq.update(task)
    self.num_docs += docs
    self._tasks.append((docs, {h: c for h, c in task.items()
                               if c >= self._MIN_BOILERPLATE_DOCS}))
    return self

  def boilerplate(self, max_doc_fraction: float) -> set[int]:
    """The n-grams found in more than `max_doc_fraction` of one task's texts (and in >= 3)."""
    out = set()
    for docs, frequent in self._tasks:
      limit = max_doc_fraction * docs
      out.update(h for h, c in frequent.items() if c > limit)
    return out


def overlap_report(eval_inputs: Mapping[str, Iterable[str | bytes]], index: NgramIndex, *,
                   threshold: float = DEFAULT_THRESHOLD,
                   max_train_doc_fraction: float = 0.05) -> dict[str, Any]:
  """Per eval task: how many examples share an n-gram with the training texts.

  Returns `{"n", "threshold", "num_train_texts", "tasks": {task: {"examples",
  "contaminated_examples", "fraction", "ngram_overlap", "warn"}}, "warn": [tasks over threshold]}`.
  `fraction` and `ngram_overlap` are fractions in [0, 1].
  """
  if not 0.0 <= threshold <= 1.0:
    raise ValueError(f"Contamination threshold is a fraction in [0, 1], got {threshold}.")
  ignore = index.boilerplate(max_train_doc_fraction) if index.num_docs else set()
  report: dict[str, Any] = {"n": index.n, "threshold": threshold,
                            "num_train_texts": index.num_docs,
                            "num_boilerplate_ngrams": len(ignore), "tasks": {}, "warn": []}
  for task, texts in sorted(eval_inputs.items()):
    examples = contaminated = grams_total = grams_hit = 0
    for text in texts:
      grams = ngram_hashes(text, index.n) - ignore
      hit = sum(1 for g in grams if g in index.doc_freq)
      examples += 1
      grams_total += len(grams)
      grams_hit += hit
      contaminated += hit > 0
    fraction = contaminated / examples if examples else 0.0
    warn = fraction > threshold
    report["tasks"][task] = {"examples": examples, "contaminated_examples": contaminated,
                             "fraction": fraction,
                             "ngram_overlap": grams_hit / grams_total if grams_total else 0.0,
                             "warn": warn}
    if warn:
      report["warn"].append(task)
  return report


def log_warnings(report: Mapping[str, Any], logger: logging.Logger | None = None) -> list[str]:
  """Logs a warning per task over the threshold; returns the messages."""
  logger = logger or logging.getLogger("flanjax.contamination")
  messages = []
  for task in report["warn"]:
    t = report["tasks"][task]
    msg = (f"Contamination: {t['contaminated_examples']}/{t['examples']} eval examples of "
           f"{task!r} ({100 * t['fraction']:.1f}%) share a {report['n']}-gram with the training "
           f"inputs (threshold {100 * report['threshold']:.1f}%). Held-out scores of this task "
           "may overstate generalisation.")
    logger.warning(msg)
    messages.append(msg)
  return messages


def mixture_inputs(mixture_or_task: str, split: str = "train", *, max_examples: int | None = None,
                   field: str = "inputs_pretokenized", data_dir: str | None = None,
                   seed: int | None = None) -> list[str]:
  """The raw input texts of a seqio task or mixture split (`mixture_texts` of one field)."""
  return [row[0] for row in mixture_texts(mixture_or_task, split, (field,),
                                          max_examples=max_examples, data_dir=data_dir,
                                          seed=seed)]


def mixture_texts(mixture_or_task: str, split: str, fields: Sequence[str], *,
                  max_examples: int | None = None, data_dir: str | None = None,
                  seed: int | None = None) -> list[tuple[str, ...]]:
  """Each example's texts of `fields` (e.g. inputs_pretokenized, targets_pretokenized) in one
  read of a seqio task or mixture split: `task_texts`, its tasks' rows one after another."""
  return [row for rows in task_texts(mixture_or_task, split, fields, max_examples=max_examples,
                                     data_dir=data_dir, seed=seed).values() for row in rows]


def task_texts(mixture_or_task: str, split: str, fields: Sequence[str], *,
               max_examples: int | None = None, data_dir: str | None = None,
               seed: int | None = None) -> dict[str, list[tuple[str, ...]]]:
  """{task: each example's texts of `fields`} of a seqio task or mixture split (imports
  seqio/TensorFlow lazily); `seed` draws the templates (evaluation's `EVAL_SEED` gives the texts
  evaluation scores).

  A mixture is read task by task (its sub-tasks' own splits, not the rate-weighted sample), up to
  `max_examples` texts per task; tasks without `split` are left out.
  """
  import seqio
  import tensorflow_datasets as tfds

  from flanjax import registration
  if data_dir is not None:
    seqio.set_tfds_data_dir_override(data_dir)
  provider = seqio.get_mixture_or_task(mixture_or_task)
  out = {}
  for task in seqio.get_subtasks(provider):
    if split not in task.splits:
      continue
    with registration.naming_unprepared_datasets(mixture_or_task, split):
      ds = task.get_dataset(sequence_length=None, split=split, shuffle=False, num_epochs=1,
                            use_cached=False, try_in_mem_cache=False, seed=seed)
    if max_examples is not None:
      ds = ds.take(max_examples)
    rows = out.setdefault(task.name, [])
    for ex in tfds.as_numpy(ds):
      missing = [f for f in fields if f not in ex]
      if missing:
        raise ValueError(f"Task {task.name!r} has no feature {missing[0]!r} (features: "
                         f"{sorted(ex)}); the contamination check needs the raw inputs.")
      rows.append(tuple(ex[f].decode("utf-8", errors="replace") for f in fields))
  return out
