"""Evaluation metrics with seqio's signatures, reported on a 0-100 scale (like T5); edit distances
(`mean_edit`, `median_edit`) count words.

Predict metrics are `fn(targets, predictions) -> dict[str, float]`; score metrics are
`fn(targets, scores) -> dict[str, float]`. A target may be a string or, where the data has several
references, a list of strings: every metric then takes the best match over the references.

Plain Python (rouge-score, sacrebleu, editdistance, numpy): no TensorFlow.
"""
from __future__ import annotations

import collections
import difflib
import re
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# The metric kinds a task declares (`TaskInfo.metric`) and the headline number of each kind, the
# one that per-cluster means, tables and plots use. For option tasks FLAN reports rank
# classification, so `rank_accuracy` is preferred over generation accuracy when it was computed.
# A task may name its own headline instead (`TaskInfo.headline`, e.g. "em" for closed-book
# Natural Questions and TriviaQA, which FLAN reports by exact match, after GPT-3).
# "rouge_edit" is ROUGE plus T5's word-level edit distance (`edit_distance`, FLAN's metric for Fix
# Punctuation): a distance is lower-better, so the headline stays ROUGE's, fit for cluster means.
# "trivia_qa" is "squad" with T5's TriviaQA normalisation (punctuation becomes a space, not
# nothing), FLAN's metric for closed-book TriviaQA and Natural Questions.
METRIC_KINDS = ("accuracy", "rouge", "bleu", "squad", "rouge_edit", "trivia_qa")
PRIMARY_METRIC = {
    "accuracy": ("rank_accuracy", "accuracy"),
    "rouge": ("rougeLsum", "rougeL", "rouge1"),
    "bleu": ("bleu",),
    "squad": ("f1", "em"),
    "rouge_edit": ("rougeLsum", "rougeL", "rouge1"),
    "trivia_qa": ("f1", "em"),
}
# The higher-is-better names the metric functions of each kind return (with rank classification,
# option tasks, `rank_accuracy` too): a task's own headline must be one of them.
METRIC_NAMES = {
    "accuracy": ("accuracy",),
    "rouge": ("rouge1", "rouge2", "rougeLsum"),
    "bleu": ("bleu",),
    "squad": ("f1", "em"),
    "rouge_edit": ("rouge1", "rouge2", "rougeLsum"),
    "trivia_qa": ("f1", "em"),
}


def _references(target: Any) -> list[str]:
  """A target as a non-empty list of reference strings."""
  if isinstance(target, bytes):
    return [target.decode("utf-8")]
  if isinstance(target, str):
    return [target]
  if isinstance(target, np.ndarray):
    target = target.tolist()
  if isinstance(target, (list, tuple)):
    refs = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in target]
    if not refs:
      raise ValueError("A target has an empty list of references; every example needs at "
                       "least one reference answer.")
    return refs
  return [str(target)]


def _as_text(prediction: Any) -> str:
  if isinstance(prediction, bytes):
    return prediction.decode("utf-8")
  return str(prediction)


def _check_lengths(targets: Sequence[Any], outputs: Sequence[Any], what: str) -> None:
  if len(targets) != len(outputs):
    raise ValueError(f"Got {len(targets)} targets but {len(outputs)} {what}: each example needs "
                     f"exactly one {what[:-1]}.")
  if len(targets) == 0:
    raise ValueError(f"No examples to score: got 0 targets and 0 {what}.")


def accuracy(targets: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
  """Exact-match accuracy (0-100); with several references any exact match counts."""
  _check_lengths(targets, predictions, "predictions")
  hits = [_as_text(p) in _references(t) for t, p in zip(targets, predictions)]
  return {"accuracy": 100.0 * float(np.mean(hits))}


def _rougelsum_text(text: str) -> str:
  """A summary prepared for rougeLsum exactly as T5's `rouge` prepares targets and predictions.

  rouge-score's rougeLsum takes each line as one sentence. T5 (`t5.evaluation.metrics.rouge`)
  only starts a new line after " . " (a full stop between spaces, as in tokenized text such as
  CNN/DailyMail's); nothing else is split, so a text without " . " is one sentence and its
  rougeLsum equals its rougeL.
  """
  return text.replace(" . ", " .\n")


def rouge(targets: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
  """Mean ROUGE-1/2/Lsum F-measure (0-100) via rouge-score; max over references per example.

  Per example the scores are T5's (default rouge-score tokenizer, no stemming, T5's rougeLsum
  preparation). Over examples flanjax takes the mean; T5 reports the median of bootstrap
  resampled means (rouge-score's BootstrapAggregator), which is that mean up to resampling noise.
  """
  from rouge_score import rouge_scorer

  _check_lengths(targets, predictions, "predictions")
  keys = ("rouge1", "rouge2", "rougeLsum")
  scorer = rouge_scorer.RougeScorer(list(keys))
  totals = collections.defaultdict(float)
  for target, prediction in zip(targets, predictions):
    refs = [_rougelsum_text(r) for r in _references(target)]
    scores = scorer.score_multi(refs, _rougelsum_text(_as_text(prediction)))
    for k in keys:
      totals[k] += scores[k].fmeasure
  return {k: 100.0 * totals[k] / len(targets) for k in keys}


def bleu(targets: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
  """Corpus BLEU (0-100) via sacrebleu (T5's settings: intl tokenizer, exp smoothing).

  With a list of references per example, all of them are used (a varying number is fine).
  """
  import sacrebleu

  _check_lengths(targets, predictions, "predictions")
  refs = [_references(t) for t in targets]
  num_refs = max(len(r) for r in refs)
  # sacrebleu wants one stream per reference slot; None marks a missing reference.
  streams = [[r[i] if i < len(r) else None for r in refs] for i in range(num_refs)]
  result = sacrebleu.corpus_bleu([_as_text(p) for p in predictions], streams,
                                 smooth_method="exp", smooth_value=0.0, force=False,
                                 lowercase=False, tokenize="intl", use_effective_order=False)
  return {"bleu": float(result.score)}


def _words(text: str) -> list[str]:
  """T5's edit-distance tokens: the lower-cased text split at every non-word character (so a
  punctuation mark is a split, and "a, b" is ["a", "", "b"])."""
  return re.split(r"[^\w]", text.lower())


def edit_distance(targets: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
  """T5's word-level edit distance (`t5.evaluation.metrics.edit_distance`, FLAN's Fix Punctuation
  metric): Levenshtein distance between the token lists of `_words`, the nearest reference per
  example; the mean and median over examples (lower is better)."""
  import editdistance

  _check_lengths(targets, predictions, "predictions")
  dists = [min(editdistance.eval(_words(r), _words(_as_text(p))) for r in _references(t))
           for t, p in zip(targets, predictions)]
  return {"mean_edit": float(np.mean(dists)), "median_edit": float(np.median(dists))}


def _normalize_answer(text: str, punctuation: str, replacement: str) -> str:
  """T5's `qa_utils._normalize_answer`: lower case, each punctuation character replaced, no
  articles, single spaces."""
  marks = set(punctuation)
  text = "".join(replacement if ch in marks else ch for ch in text.lower())
  text = re.sub(r"\b(a|an|the)\b", " ", text)
  return " ".join(text.split())


def normalize_squad(text: str) -> str:
  """SQuAD answer normalisation: lower case, no punctuation, no articles, single spaces."""
  return _normalize_answer(text, string.punctuation, "")


def normalize_trivia_qa(text: str) -> str:
  """TriviaQA answer normalisation (T5's): as SQuAD's, but punctuation and ‘’´`_ become spaces
  ("rock-and-roll" is "rock and roll")."""
  return _normalize_answer(text, string.punctuation + "‘’´`_", " ")


def _squad_f1(gold: str, prediction: str, normalize=normalize_squad) -> float:
  """Token F1 as T5's `qa_utils._f1_score`: no token in common (also when both the gold answer
  and the prediction normalise to nothing) is 0."""
  gold_tokens = normalize(gold).split()
  pred_tokens = normalize(prediction).split()
  common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
  overlap = sum(common.values())
  if overlap == 0:
    return 0.0
  precision = overlap / len(pred_tokens)
  recall = overlap / len(gold_tokens)
  return 2 * precision * recall / (precision + recall)


def squad(targets: Sequence[Any], predictions: Sequence[Any],
          normalize=normalize_squad) -> dict[str, float]:
  """SQuAD token F1 and exact match (0-100), max over the gold answers of each example."""
  _check_lengths(targets, predictions, "predictions")
  f1s, ems = [], []
  for target, prediction in zip(targets, predictions):
    golds = _references(target)
    pred = _as_text(prediction)
    ems.append(max(float(normalize(g) == normalize(pred)) for g in golds))
    f1s.append(max(_squad_f1(g, pred, normalize) for g in golds))
  return {"f1": 100.0 * float(np.mean(f1s)), "em": 100.0 * float(np.mean(ems))}


def trivia_qa(targets: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
  """T5's `trivia_qa` metric (FLAN's for TriviaQA and Natural Questions): `squad` under
  `normalize_trivia_qa`."""
  return squad(targets, predictions, normalize=normalize_trivia_qa)


def _parse_rank_target(target: Any) -> tuple[Any, int, bool, float]:
  """One rank-classification target as (example_id, option_id, is_correct, weight).

  Accepted forms: a dict with `idx` (an `(example, option)` pair or an example id) and
  `is_correct` (optional `weight`), or a tuple `(idx, is_correct[, weight[, target_length]])` as
  T5's `rank_classification` postprocessor emits.
  """
  if isinstance(target, dict):
    if "idx" not in target or "is_correct" not in target:
      raise ValueError(f"A rank-classification target needs 'idx' and 'is_correct'; got keys "
                       f"{sorted(target)}.")
    idx, is_correct, weight = target["idx"], target["is_correct"], target.get("weight", 1.0)
  elif isinstance(target, (tuple, list, np.ndarray)) and 2 <= len(target) <= 4:
    idx, is_correct = target[0], target[1]
    weight = target[2] if len(target) > 2 else 1.0
  else:
    raise ValueError(f"Unrecognised rank-classification target {target!r}: expected "
                     "(idx, is_correct[, weight]) or a dict with 'idx' and 'is_correct'.")
  if isinstance(idx, np.ndarray):
    idx = idx.tolist()
  if isinstance(idx, (tuple, list)):
    if len(idx) != 2:
      raise ValueError(f"rank-classification idx {idx!r} should be (example_index, option_index).")
    example_id, option_id = idx[0], int(idx[1])
  else:
    example_id, option_id = idx, -1
  return example_id, option_id, bool(is_correct), float(weight)


def rank_classification(targets: Sequence[Any], scores: Sequence[float]) -> dict[str, float]:
  """Rank classification (0-100): per example the option with the highest score wins.

  `targets` hold one entry per (example, option) pair (see `_parse_rank_target`); `scores` the
  log-likelihood of that option. Ties go to the lowest option index. An example with several
  correct options counts as right when the winner is any of them.
  """
  _check_lengths(targets, scores, "scores")
  groups: dict[Any, list[tuple[int, float, bool, float]]] = {}
  for position, (target, score) in enumerate(zip(targets, scores)):
    example_id, option_id, is_correct, weight = _parse_rank_target(target)
    example_id = tuple(example_id) if isinstance(example_id, list) else example_id
    option_id = position if option_id < 0 else option_id
    groups.setdefault(example_id, []).append((option_id, float(score), is_correct, weight))
  hits, weights = [], []
  for example_id, options in groups.items():
    if not any(correct for _, _, correct, _ in options):
      raise ValueError(f"Example {example_id!r} has no correct option among its "
                       f"{len(options)} options; check the answer of that example.")
    best = max(options, key=lambda o: (o[1], -o[0]))
    hits.append(float(best[2]))
    weights.append(options[0][3])
  return {"rank_accuracy": 100.0 * float(np.average(hits, weights=weights))}


def rank_options(option_scores: Sequence[Sequence[float]],
                 answers: Sequence[int | Sequence[int]]) -> dict[str, float]:
  """Rank classification from per-example option scores `[[score per option], ...]` (0-100).

  `answers`: per example the index of its correct option, or the indices of all its correct
  options (e.g. ReCoRD's several spellings of the answer entity): the highest-scoring option
  (ties: the lowest index) is right when it is any of them, as in T5's `rank_classification`.
  """
  _check_lengths(answers, option_scores, "option score lists")
  hits = []
  for i, (scores, answer) in enumerate(zip(option_scores, answers)):
    if isinstance(answer, np.ndarray):
      answer = answer.tolist()
    correct = ({int(a) for a in answer} if isinstance(answer, (list, tuple, set, frozenset))
               else {int(answer)})
    if not correct:
      raise ValueError(f"Example {i} has no correct option among its {len(scores)} options.")
    for a in sorted(correct):
      if not 0 <= a < len(scores):
        raise ValueError(f"Example {i}: answer index {a} is outside its {len(scores)} options.")
    hits.append(float(int(np.argmax(scores)) in correct))
  return {"rank_accuracy": 100.0 * float(np.mean(hits))}


def binary_f1(gold: Sequence[bool], predicted: Sequence[bool]) -> float:
  """The F1 (0-100) of the positive ("true") class of binary decisions (GLUE's MRPC / QQP F1);
  0 when neither side has a positive."""
  _check_lengths(gold, predicted, "predictions")
  gold, predicted = np.asarray(gold, bool), np.asarray(predicted, bool)
  denominator = float(np.sum(gold) + np.sum(predicted))
  return 100.0 * 2.0 * float(np.sum(gold & predicted)) / denominator if denominator else 0.0


def grouped_f1a_em(groups: Sequence[Any], gold: Sequence[bool],
                   predicted: Sequence[bool]) -> dict[str, float]:
  """SuperGLUE's MultiRC metrics (0-100) of per-answer true/false decisions: `f1a`, the F1 of
  "true" over all answers, and `em`, the share of groups (questions) with every answer right."""
  _check_lengths(gold, groups, "groups")
  f1a = binary_f1(gold, predicted)
  gold, predicted = np.asarray(gold, bool), np.asarray(predicted, bool)
  right: dict[Any, bool] = {}
  for g, ok in zip(groups, gold == predicted):
    right[g] = right.get(g, True) and bool(ok)
  em = float(np.mean(list(right.values()))) if right else 0.0
  return {"f1a": f1a, "em": 100.0 * em}


def _ranks(x: np.ndarray) -> np.ndarray:
  """Ranks from 1, ties sharing their mean rank (as scipy.stats.rankdata's default)."""
  order = np.argsort(x, kind="stable")
  ranks = np.empty(len(x), np.float64)
  ranks[order] = np.arange(1, len(x) + 1)
  for value in np.unique(x):
    tied = x == value
    ranks[tied] = ranks[tied].mean()
  return ranks


def correlations(gold: Sequence[float], predicted: Sequence[float]) -> dict[str, float]:
  """Pearson and Spearman correlation (x 100, as T5's GLUE STS-B metric) of predicted with gold
  values; 0 where one side is constant (the correlation is undefined there)."""
  _check_lengths(gold, predicted, "predictions")
  gold, predicted = np.asarray(gold, np.float64), np.asarray(predicted, np.float64)

  def pearson(a, b):
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
      return 0.0
    return float(np.corrcoef(a, b)[0, 1])
  return {"pearson": 100.0 * pearson(gold, predicted),
          "spearman": 100.0 * pearson(_ranks(gold), _ranks(predicted))}


# Metrics that a task computes from its rank-classification winners, beside `rank_accuracy`
# (`TaskInfo.rank_metrics`; flanjax's evaluation calls `rank_task_metrics`): "binary_f1" (MRPC,
# QQP: option 1 is "true"), "grouped_f1a_em" (MultiRC: also each example's `group`, its
# question), "correlation" (STS-B: each example's float `label_value`; option i is the value i).
RANK_METRICS = ("binary_f1", "grouped_f1a_em", "correlation")


def rank_task_metrics(kind: str, examples: Sequence[dict], winners: Sequence[int]
                      ) -> dict[str, float]:
  """`rank_`-prefixed metrics of kind `kind` (RANK_METRICS) from the winning option index of each
  example: "binary_f1": rank_f1 of true/false options (option 1 is "true", the gold one is
  `answer_index`); "grouped_f1a_em": rank_f1a / rank_em of those, a question being `group`;
  "correlation": rank_pearson / rank_spearman of the winners (option i means the value i)
  against `label_value`."""
  if kind not in RANK_METRICS:
    raise ValueError(f"Unknown rank metrics {kind!r}; use one of {list(RANK_METRICS)}.")
  _check_lengths(examples, winners, "winners")
  field = {"grouped_f1a_em": "group", "correlation": "label_value"}.get(kind)
  missing = [i for i, ex in enumerate(examples) if field and field not in ex]
  if missing:
    raise ValueError(f"Rank metrics {kind!r} read each example's {field!r} field, which example "
                     f"{missing[0]} lacks; the task's preprocessor must emit it.")
  if kind == "binary_f1":
    out = {"f1": binary_f1([int(ex["answer_index"]) == 1 for ex in examples],
                           [int(w) == 1 for w in winners])}
  elif kind == "grouped_f1a_em":
    out = grouped_f1a_em([ex["group"] for ex in examples],
                         [int(ex["answer_index"]) == 1 for ex in examples],
                         [int(w) == 1 for w in winners])
  else:
    out = correlations([float(ex["label_value"]) for ex in examples],
                       [float(w) for w in winners])
  return {f"rank_{k}": v for k, v in out.items()}


PREDICT_METRICS: dict[str, tuple[Callable[..., dict[str, float]], ...]] = {
    "accuracy": (accuracy,), "rouge": (rouge,), "bleu": (bleu,), "squad": (squad,),
    "rouge_edit": (rouge, edit_distance), "trivia_qa": (trivia_qa,),
}


def _check_kind(kind: str) -> None:
  if kind not in METRIC_KINDS:
    close = difflib.get_close_matches(kind, METRIC_KINDS, n=1)
    raise ValueError(f"Unknown metric kind {kind!r}; kinds: {list(METRIC_KINDS)}"
                     + (f" (did you mean {close[0]!r}?)" if close else "."))


def metric_fns(kind: str, *, rank: bool = False) -> list[Callable[..., dict[str, float]]]:
  """The seqio metric functions of a metric kind (plus rank classification when `rank`)."""
  _check_kind(kind)
  fns = list(PREDICT_METRICS[kind])
  if rank:
    fns.append(rank_classification)
  return fns


def headline_names(kind: str) -> tuple[str, ...]:
  """The metric names a task of metric kind `kind` may declare as its headline."""
  _check_kind(kind)
  return METRIC_NAMES[kind] + ("rank_accuracy",)


def check_headline(kind: str, headline: str | None) -> None:
  """ValueError unless `headline` (None / "": the kind's own) is a metric of kind `kind`."""
  if not headline:
    return
  names = headline_names(kind)
  if headline not in names:
    lower = {n.lower(): n for n in names}
    close = [lower[c] for c in difflib.get_close_matches(str(headline).lower(), lower, n=1)]
    raise ValueError(f"Headline metric {headline!r} is not one of the {kind!r} metrics "
                     f"{list(names)}" + (f" (did you mean {close[0]!r}?)" if close else "."))


def primary_metric(metrics: dict[str, float], kind: str | None = None,
                   headline: str | None = None) -> tuple[str, float]:
  """The headline (name, value) of a task's metrics dict, for per-cluster means and plots.

  `headline`: the task's own headline metric (`TaskInfo.headline`), taken when `metrics` has
  it; otherwise (and without one) the first of its kind's `PRIMARY_METRIC` names present, else
  `rank_accuracy` (a rank-classification variant, e.g. `flan2021_record__scoring`, has only it).
  """
  if kind is not None:
    _check_kind(kind)
    candidates = PRIMARY_METRIC[kind]
  else:
    candidates = tuple(n for kind_names in PRIMARY_METRIC.values() for n in kind_names)
  if headline:
    candidates = (headline,) + tuple(n for n in candidates if n != headline)
  if "rank_accuracy" not in candidates:  # a scoring variant of any kind: its only metric
    candidates = candidates + ("rank_accuracy",)
  for name in candidates:
    if name in metrics:
      return name, float(metrics[name])
  raise ValueError(f"None of the metrics {sorted(metrics)} is a headline metric "
                   f"{list(candidates)}" + (f" of kind {kind!r}." if kind else "."))


def cluster_means(task_metrics: dict[str, dict[str, float]], task_clusters: dict[str, str],
                  task_kinds: dict[str, str] | None = None,
                  task_headlines: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
  """Per cluster, the mean over its tasks of each task's headline metric.

  `task_kinds` / `task_headlines`: each task's metric kind and own headline (see
  `primary_metric`). Returns `{cluster: {"score": mean, "num_tasks": n, "tasks": {task:
  (metric, value)}}}`.
  """
  out: dict[str, dict[str, Any]] = {}
  for task, metrics in sorted(task_metrics.items()):
    if task not in task_clusters:
      raise ValueError(f"Task {task!r} has no cluster; known: {sorted(task_clusters)}.")
    kind = (task_kinds or {}).get(task)
    name, value = primary_metric(metrics, kind, (task_headlines or {}).get(task))
    entry = out.setdefault(task_clusters[task], {"tasks": {}})
    entry["tasks"][task] = (name, value)
  for entry in out.values():
    values = [v for _, v in entry["tasks"].values()]
    entry["score"] = float(np.mean(values))
    entry["num_tasks"] = len(values)
  return out
