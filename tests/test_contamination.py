"""13-gram contamination check between eval inputs and training inputs."""
import logging

import pytest

from flanjax import contamination

LEAK = ("the quick brown fox jumps over the lazy dog near the old river bank today while "
        "children watch")


def _train_texts():
  # 40 training texts share the same instruction (boilerplate); one contains the leaked passage.
  instruction = "Read the following passage carefully and then answer the question that comes after it"
  texts = [f"{instruction}. passage number {i} talks about topic {i * 7} only" for i in range(40)]
  texts.append(f"Summarise: {LEAK}.")
  return texts


def test_tokens_and_ngrams():
  assert contamination.tokens("Hello, World!  foo_bar") == ["hello", "world", "foo_bar"]
  assert len(contamination.ngram_hashes("a b c d", n=2)) == 3
  # Shorter than n: the whole text is one gram, so exact duplicates match.
  assert contamination.ngram_hashes("Yes.", n=13) == contamination.ngram_hashes("yes", n=13)
  assert contamination.ngram_hashes("", n=13) == set()
  with pytest.raises(ValueError, match="at least 1"):
    contamination.ngram_hashes("a", n=0)


def test_overlap_report_finds_leak_and_ignores_boilerplate(caplog):
  index = contamination.NgramIndex(13).add_all(_train_texts())
  instruction = "Read the following passage carefully and then answer the question that comes after it"
  eval_inputs = {
      "clean": [f"{instruction}. a brand new passage about unseen things {i}" for i in range(4)],
      "leaky": [f"Question: {LEAK}?", "something entirely different and short"],
  }
  report = contamination.overlap_report(eval_inputs, index, threshold=0.1)
  assert report["num_train_texts"] == 41
  assert report["num_boilerplate_ngrams"] > 0
  assert report["tasks"]["clean"]["contaminated_examples"] == 0
  assert report["tasks"]["leaky"]["contaminated_examples"] == 1
  assert report["tasks"]["leaky"]["fraction"] == pytest.approx(0.5)
  assert 0 < report["tasks"]["leaky"]["ngram_overlap"] < 1
  assert report["warn"] == ["leaky"]
  with caplog.at_level(logging.WARNING):
    msgs = contamination.log_warnings(report)
  assert len(msgs) == 1 and "'leaky'" in msgs[0] and "13-gram" in msgs[0]
  assert "1/2 eval examples" in caplog.text


def test_boilerplate_counts_without_filter():
  index = contamination.NgramIndex(13).add_all(_train_texts())
  instruction = "Read the following passage carefully and then answer the question that comes after it"
  report = contamination.overlap_report({"clean": [f"{instruction}. new"]}, index,
                                        max_train_doc_fraction=1.0)
  assert report["tasks"]["clean"]["contaminated_examples"] == 1


def test_threshold_validation():
  with pytest.raises(ValueError, match=r"fraction in \[0, 1\]"):
    contamination.overlap_report({}, contamination.NgramIndex(), threshold=5)


def test_boilerplate_is_judged_per_training_task():
  """A template phrase of one training task is boilerplate even where that task is a small
  share of the mixture (40 of 1,041 texts here: under 5 % of the whole, all of its own task);
  a passage in 2 texts of a small task stays content."""
  instruction = "Read the following passage carefully and then answer the question that comes after it"
  other = [f"entirely unrelated training text number {i} about apples and pears" for i in range(1000)]
  index = contamination.NgramIndex(13)
  index.add_all(_train_texts())
  index.add_all(other)
  index.add_all([f"Recall: {LEAK}.", f"Again: {LEAK}!", "a third small text"])
  report = contamination.overlap_report(
      {"clean": [f"{instruction}. a brand new passage about unseen things {i}" for i in range(4)],
       "leaky": [f"Question: {LEAK}?"]}, index, threshold=0.1)
  assert report["num_train_texts"] == 1044
  assert report["tasks"]["clean"]["contaminated_examples"] == 0
  assert report["tasks"]["leaky"]["contaminated_examples"] == 1
  # The whole mixture as one collection (before): the phrase is under 5 % of it, so it counted.
  whole = contamination.NgramIndex(13).add_all(_train_texts() + other)
  report = contamination.overlap_report(
      {"clean": [f"{instruction}. a brand new passage"]}, whole, threshold=0.1)
  assert report["tasks"]["clean"]["contaminated_examples"] == 1


def test_the_evaluation_check_reads_the_training_mixture_task_by_task(monkeypatch):
  """run_contamination_check judges boilerplate per training task: a phrase that fills one
  small task (40 of 1,041 training texts) is not reported as contamination."""
  import types

  from flanjax import evaluation
  instruction = "Read the following passage carefully and then answer the question that comes after it"
  train = {"small": [(t,) for t in _train_texts()[:40]],
           "big": [(f"entirely unrelated training text number {i} about apples",)
                   for i in range(1001)]}
  monkeypatch.setattr(contamination, "task_texts", lambda *args, **kwargs: train)
  monkeypatch.setattr(evaluation, "resolve_tasks",
                      lambda tasks, split: [types.SimpleNamespace(name="held_out")])
  monkeypatch.setattr(contamination, "mixture_inputs", lambda *args, **kwargs: [
      f"{instruction}. a brand new passage about unseen things {i}" for i in range(4)])
  report = evaluation.run_contamination_check(["held_out"], "mix", "validation")
  assert report["num_train_texts"] == 1041
  assert report["tasks"]["held_out"]["contaminated_examples"] == 0
