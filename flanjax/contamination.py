"""Contamination check: n-gram (default 13-gram) overlap between eval inputs and training inputs.

An eval example is *contaminated* when any of its n-grams also occurs in the training inputs
(texts shorter than n tokens count as one gram of all their tokens, so exact duplicates are
caught). Instruction templates repeat the same long phrases in every example of a task; n-grams
found in more than `max_train_doc_fraction` of the training texts are treated as template
boilerplate and ignored, so shared instructions do not make every example look contaminated.

Pure Python; `mixture_inputs` imports seqio lazily.
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
  """The n-grams of a collection of training texts, with document frequencies."""

  def __init__(self, n: int = DEFAULT_N):
    self.n = n
    self.doc_freq: collections.Counter[int] = collections.Counter()
    self.num_docs = 0

  def add(self, text: str | bytes) -> None:
    self.doc_freq.update(ngram_hashes(text, self.n))
    self.num_docs += 1

  def add_all(self, texts: Iterable[str | bytes]) -> "NgramIndex":
    for t in texts:
      self.add(t)
    return self

  def boilerplate(self, max_doc_fraction: float) -> set[int]:
    """The n-grams found in more than `max_doc_fraction` of the documents (and in >= 2)."""
    limit = max(1.0, max_doc_fraction * self.num_docs)
    return {h for h, c in self.doc_freq.items() if c > limit}


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
  read of a seqio task or mixture split (imports seqio/TensorFlow lazily); `seed` draws the
  templates (evaluation's `EVAL_SEED` gives the texts evaluation scores).

  A mixture is read task by task (its sub-tasks' own splits, not the rate-weighted sample), up to
  `max_examples` texts per task.
  """
  import seqio
  import tensorflow_datasets as tfds

  from flanjax import registration
  if data_dir is not None:
    seqio.set_tfds_data_dir_override(data_dir)
  provider = seqio.get_mixture_or_task(mixture_or_task)
  texts = []
  for task in seqio.get_subtasks(provider):
    if split not in task.splits:
      continue
    with registration.naming_unprepared_datasets(mixture_or_task, split):
      ds = task.get_dataset(sequence_length=None, split=split, shuffle=False, num_epochs=1,
                            use_cached=False, try_in_mem_cache=False, seed=seed)
    if max_examples is not None:
      ds = ds.take(max_examples)
    for ex in tfds.as_numpy(ds):
      missing = [f for f in fields if f not in ex]
      if missing:
        raise ValueError(f"Task {task.name!r} has no feature {missing[0]!r} (features: "
                         f"{sorted(ex)}); the contamination check needs the raw inputs.")
      texts.append(tuple(ex[f].decode("utf-8", errors="replace") for f in fields))
  return texts
