"""Metric functions on hand-made predictions with known scores (0-100 scale)."""
import math

import pytest

from flanjax import metrics


def test_accuracy():
  assert metrics.accuracy(["yes", "no", "no", "yes"], ["yes", "no", "yes", "no"]) == {
      "accuracy": 50.0}
  # Several references: any exact match counts; bytes are decoded.
  assert metrics.accuracy([["a", "b"], b"c"], ["b", "c"])["accuracy"] == 100.0
  assert metrics.accuracy(["a"], ["A"])["accuracy"] == 0.0


def test_accuracy_errors():
  with pytest.raises(ValueError, match="2 targets but 1 predictions"):
    metrics.accuracy(["a", "b"], ["a"])
  with pytest.raises(ValueError, match="No examples"):
    metrics.accuracy([], [])
  with pytest.raises(ValueError, match="empty list of references"):
    metrics.accuracy([[]], ["a"])


def test_rouge_known_values():
  m = metrics.rouge(["the cat sat"], ["the cat"])
  # rouge1: P=1, R=2/3 -> F=0.8. rouge2: P=1, R=1/2 -> F=2/3. LCS = 2 -> F=0.8.
  assert m["rouge1"] == pytest.approx(80.0)
  assert m["rouge2"] == pytest.approx(200 / 3)
  assert m["rougeLsum"] == pytest.approx(80.0)
  assert metrics.rouge(["a b c"], ["a b c"]) == {"rouge1": 100.0, "rouge2": 100.0,
                                                  "rougeLsum": 100.0}
  # Mean over examples: one perfect, one with nothing in common.
  assert metrics.rouge(["a b", "c d"], ["a b", "x y"])["rouge1"] == pytest.approx(50.0)


def test_rouge_multi_reference_takes_best():
  m = metrics.rouge([["dogs bark loudly", "the cat sat"]], ["the cat sat"])
  assert m["rouge1"] == pytest.approx(100.0)
  assert m["rougeLsum"] == pytest.approx(100.0)


def _t5_rouge_scores(target, prediction):
  """rouge-score's F-measures (0-100) after T5's preparation (t5.evaluation.metrics.rouge)."""
  from rouge_score import rouge_scorer
  scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"])
  prepare = lambda text: text.replace(" . ", " .\n")  # noqa: E731
  scores = scorer.score(target=prepare(target), prediction=prepare(prediction))
  return {k: 100 * v.fmeasure for k, v in scores.items()}


def test_rougelsum_splits_sentences_as_t5_does():
  # Only " . " ends a sentence (T5's preparation): three sentences in swapped order without
  # that spacing are one sentence each side, so rougeLsum is rougeL (LCS 2 of 6 tokens)...
  target, prediction = "a b. c d! e f?", "e f? c d! a b."
  t5 = _t5_rouge_scores(target, prediction)
  assert t5["rougeLsum"] == t5["rougeL"] == pytest.approx(100 / 3)
  assert metrics.rouge([target], [prediction])["rougeLsum"] == pytest.approx(100 / 3)
  # ... and with " . " between them rougeLsum takes the union LCS per reference sentence.
  m = metrics.rouge(["a b . c d . e f"], ["e f . c d . a b"])
  assert m["rougeLsum"] == pytest.approx(100.0)


@pytest.mark.parametrize("target,prediction", [
    ("The cat sat . It was happy. Then it left !", "Then it left ! It was happy . The cat sat."),
    ("x y? z w.", "z w. x y?"),
    ("one two . three four .\nfive six", "five six\nthree four . one two"),
    (" leading space . and more  .  trailing ", "trailing and more . leading space"),
])
def test_rouge_equals_t5s_numbers(target, prediction):
  t5 = _t5_rouge_scores(target, prediction)
  m = metrics.rouge([target], [prediction])
  for k in ("rouge1", "rouge2", "rougeLsum"):
    assert m[k] == pytest.approx(t5[k], abs=1e-9), k


def test_bleu_known_values():
  assert metrics.bleu(["the cat is on the mat"], ["the cat is on the mat"])["bleu"] == (
      pytest.approx(100.0))
  assert metrics.bleu(["the cat is on the mat"], ["xx yy zz ww"])["bleu"] == pytest.approx(0.0)
  # All n-gram precisions 1, brevity penalty exp(1 - 6/4).
  assert metrics.bleu(["a b c d e f"], ["a b c d"])["bleu"] == pytest.approx(
      100 * math.exp(-0.5), abs=1e-6)


def test_bleu_multi_reference_variable_count():
  m = metrics.bleu([["x y z w", "a b c d e f"], "a b c d"], ["a b c d e f", "a b c d"])
  assert m["bleu"] == pytest.approx(100.0)


def test_squad_f1_em():
  m = metrics.squad(["Eiffel tower", "Paris"], ["the Eiffel Tower!", "Paris France"])
  # Example 1: exact after normalisation. Example 2: P=1/2, R=1 -> F1=2/3, EM=0.
  assert m["em"] == pytest.approx(50.0)
  assert m["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
  # Max over gold answers.
  assert metrics.squad([["London", "Paris France"]], ["Paris France"]) == {"f1": 100.0,
                                                                          "em": 100.0}


def test_squad_empty_after_normalisation_is_f1_0_as_in_t5():
  # T5's qa_utils._f1_score: no common token -> 0, also when both normalise to "" (EM: "" == "").
  assert metrics.squad(["The"], ["a ."]) == {"f1": 0.0, "em": 100.0}
  assert metrics.squad(["Paris"], ["!"]) == {"f1": 0.0, "em": 0.0}
  assert metrics.squad([["an", "Paris"]], ["the"]) == {"f1": 0.0, "em": 100.0}


def test_normalize_squad():
  assert metrics.normalize_squad("  The  Quick, brown fox.") == "quick brown fox"


def test_rank_classification_tuples():
  # Two examples with three options each; T5's (idx, is_correct, weight, length) form.
  targets = [((0, 0), False, 1.0, 3), ((0, 1), True, 1.0, 3), ((0, 2), False, 1.0, 3),
             ((1, 0), True, 1.0, 2), ((1, 1), False, 1.0, 2), ((1, 2), False, 1.0, 2)]
  scores = [-5.0, -1.0, -3.0, -4.0, -0.5, -9.0]
  assert metrics.rank_classification(targets, scores) == {"rank_accuracy": 50.0}


def test_rank_classification_dicts_and_ties():
  targets = [{"idx": [3, 0], "is_correct": True}, {"idx": [3, 1], "is_correct": False}]
  # A tie goes to the lowest option index.
  assert metrics.rank_classification(targets, [-1.0, -1.0])["rank_accuracy"] == 100.0


def test_rank_classification_errors():
  with pytest.raises(ValueError, match="no correct option"):
    metrics.rank_classification([((0, 0), False), ((0, 1), False)], [0.0, 1.0])
  with pytest.raises(ValueError, match="Unrecognised rank-classification target"):
    metrics.rank_classification(["oops"], [0.0])


def test_rank_options():
  assert metrics.rank_options([[-1.0, -2.0], [-3.0, -0.1]], [0, 0]) == {"rank_accuracy": 50.0}
  with pytest.raises(ValueError, match="outside its 2 options"):
    metrics.rank_options([[-1.0, -2.0]], [2])


def test_rank_options_with_several_correct_options():
  # ReCoRD-like: options 0 and 2 are spellings of the answer; the winner is right when it is
  # either (T5's rank_classification), wrong otherwise.
  scores = [[-3.0, -2.0, -1.0], [-1.0, -2.0, -3.0], [-2.0, -1.0, -3.0]]
  assert metrics.rank_options(scores, [[0, 2], (0, 2), [0, 2]]) == pytest.approx(
      {"rank_accuracy": 200 / 3})
  assert metrics.rank_options(scores, [0, 0, 0]) == pytest.approx({"rank_accuracy": 100 / 3})
  import numpy as np
  assert metrics.rank_options([[-1.0, 0.0]], [np.array([1])]) == {"rank_accuracy": 100.0}
  with pytest.raises(ValueError, match="outside its 3 options"):
    metrics.rank_options(scores[:1], [[0, 3]])
  with pytest.raises(ValueError, match="no correct option"):
    metrics.rank_options(scores[:1], [[]])
  # The scoring variant's rows: several is_correct rows of one example.
  targets = [((0, 0), True), ((0, 1), False), ((0, 2), True)]
  assert metrics.rank_classification(targets, scores[0]) == {"rank_accuracy": 100.0}


def test_metric_fns_are_seqio_compatible():
  import inspect
  for kind in metrics.METRIC_KINDS:
    for fn in metrics.metric_fns(kind, rank=True):
      params = [p for p, v in inspect.signature(fn).parameters.items()
                if v.default is inspect.Parameter.empty]
      assert params in (["targets", "predictions"], ["targets", "scores"])
  with pytest.raises(ValueError, match="did you mean 'rouge'"):
    metrics.metric_fns("rogue")


def test_primary_metric_and_cluster_means():
  assert metrics.primary_metric({"accuracy": 10.0, "rank_accuracy": 30.0}, "accuracy") == (
      "rank_accuracy", 30.0)
  assert metrics.primary_metric({"accuracy": 10.0}, "accuracy") == ("accuracy", 10.0)
  assert metrics.primary_metric({"rouge1": 1.0, "rougeLsum": 2.0}) == ("rougeLsum", 2.0)
  with pytest.raises(ValueError, match="headline"):
    metrics.primary_metric({"loss": 1.0})
  # A rank-classification variant of a generation task (e.g. flan2021_record__scoring) has only
  # rank_accuracy: that is its headline (it raised before).
  for kind in ("squad", "rouge", "bleu"):
    assert metrics.primary_metric({"rank_accuracy": 25.0}, kind) == ("rank_accuracy", 25.0)
  means = metrics.cluster_means(
      {"t1": {"accuracy": 40.0}, "t2": {"accuracy": 60.0}, "t3": {"bleu": 12.0}},
      {"t1": "nli", "t2": "nli", "t3": "translation"})
  assert means["nli"]["score"] == pytest.approx(50.0)
  assert means["nli"]["num_tasks"] == 2
  assert means["translation"]["tasks"] == {"t3": ("bleu", 12.0)}
  with pytest.raises(ValueError, match="no cluster"):
    metrics.cluster_means({"t9": {"accuracy": 1.0}}, {})


def test_trivia_qa_is_squad_with_t5s_trivia_qa_normalisation():
  """FLAN scores closed-book TriviaQA / NQ (and QuAC) with T5's trivia_qa metric: punctuation
  (and ‘’´`_) becomes a space where SQuAD's normalisation deletes it."""
  assert metrics.normalize_trivia_qa("The Rock-and-Roll_Hall!") == "rock and roll hall"
  assert metrics.normalize_squad("The Rock-and-Roll_Hall!") == "rockandrollhall"
  assert metrics.squad([["rock and roll"]], ["rock-and-roll"])["em"] == 0.0
  assert metrics.trivia_qa([["rock and roll"]], ["rock-and-roll"]) == {"em": 100.0, "f1": 100.0}
  assert metrics.trivia_qa([["Paris", "paris, france"]], ["Paris France"])["em"] == 100.0
  assert metrics.metric_fns("trivia_qa") == [metrics.trivia_qa]
  assert metrics.primary_metric({"f1": 60.0, "em": 40.0}, "trivia_qa", "em") == ("em", 40.0)


def test_edit_distance_is_t5s_word_level_distance():
  """Lower-cased words split at every non-word character (a punctuation mark is a split, not a
  token: "a, b" is ["a", "", "b"]); the nearest reference; mean and median over examples."""
  # ["hello", "", "world", ""] against ["hello", "world"]: two empty tokens to insert.
  assert metrics.edit_distance(["Hello, world!"], ["hello world"]) == {
      "mean_edit": 2.0, "median_edit": 2.0}
  # Another mark in the same place, or another case, costs nothing (as in T5).
  assert metrics.edit_distance(["Hello, world!"], ["hello. World?"])["mean_edit"] == 0.0
  m = metrics.edit_distance(["a b c", ["x y", "a b"], "a, b"], ["a c", "a b", "a b c"])
  assert m == {"mean_edit": pytest.approx((1 + 0 + 2) / 3), "median_edit": 1.0}
  with pytest.raises(ValueError, match="2 targets but 1 predictions"):
    metrics.edit_distance(["a", "b"], ["a"])


def test_rouge_edit_kind_reports_both_and_headlines_rouge():
  fns = metrics.metric_fns("rouge_edit")
  assert fns == [metrics.rouge, metrics.edit_distance]
  results = {k: v for fn in fns for k, v in fn(["Hello, world!"], ["Hello world"]).items()}
  assert set(results) == {"rouge1", "rouge2", "rougeLsum", "mean_edit", "median_edit"}
  assert metrics.primary_metric(results, "rouge_edit") == ("rougeLsum", results["rougeLsum"])
  with pytest.raises(ValueError, match="'mean_edit' is not one of the 'rouge_edit' metrics"):
    metrics.check_headline("rouge_edit", "mean_edit")  # lower is better: not a cluster score


def test_a_tasks_own_headline_metric():
  squad = {"f1": 60.0, "em": 40.0}
  assert metrics.primary_metric(squad, "squad") == ("f1", 60.0)  # the kind's headline
  assert metrics.primary_metric(squad, "squad", "em") == ("em", 40.0)
  assert metrics.primary_metric(squad, "squad", None) == ("f1", 60.0)
  # A headline the metrics lack (e.g. a variant's other metric): the kind's order.
  assert metrics.primary_metric({"f1": 60.0}, "squad", "em") == ("f1", 60.0)
  means = metrics.cluster_means(
      {"nq": squad, "tqa": {"f1": 80.0, "em": 70.0}, "arc": {"rank_accuracy": 30.0}},
      {"nq": "cbqa", "tqa": "cbqa", "arc": "cbqa"},
      {"nq": "squad", "tqa": "squad", "arc": "accuracy"}, {"nq": "em", "tqa": "em"})
  assert means["cbqa"]["tasks"] == {"nq": ("em", 40.0), "tqa": ("em", 70.0),
                                    "arc": ("rank_accuracy", 30.0)}
  assert means["cbqa"]["score"] == pytest.approx((40 + 70 + 30) / 3)
  assert metrics.headline_names("squad") == ("f1", "em", "rank_accuracy")
  metrics.check_headline("squad", "em")
  metrics.check_headline("squad", "")
  with pytest.raises(ValueError, match="'exact_match' is not one of the 'squad' metrics"):
    metrics.check_headline("squad", "exact_match")
  with pytest.raises(ValueError, match="did you mean 'rougeLsum'"):
    metrics.check_headline("rouge", "rougeLSum")


def test_grouped_f1a_em_is_superglue_multirc():
  """F1a: the F1 of "true" over all answers; EM: questions whose answers are all right."""
  from flanjax.metrics import grouped_f1a_em
  groups = ["q1", "q1", "q2", "q2", "q3"]
  gold = [True, False, True, True, False]
  pred = [True, False, True, False, True]
  out = grouped_f1a_em(groups, gold, pred)
  assert out["f1a"] == pytest.approx(100 * 2 * 2 / (3 + 3))  # tp 2; 3 gold, 3 predicted
  assert out["em"] == pytest.approx(100 / 3)                  # only q1 all right
  assert grouped_f1a_em(["a"], [False], [False]) == {"f1a": 0.0, "em": 100.0}


def test_correlations_match_scipy():
  import numpy as np
  from scipy import stats

  from flanjax.metrics import correlations
  rng = np.random.default_rng(0)
  gold = rng.uniform(0, 5, 64)
  pred = np.clip(np.round(gold + rng.normal(0, 1, 64)), 0, 5)  # ties, as option values have
  out = correlations(gold, pred)
  assert out["pearson"] == pytest.approx(100 * stats.pearsonr(gold, pred)[0], rel=1e-9)
  assert out["spearman"] == pytest.approx(100 * stats.spearmanr(gold, pred)[0], rel=1e-9)
  assert correlations([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == {"pearson": 0.0, "spearman": 0.0}


def test_binary_f1_is_the_f1_of_the_positive_class():
  from flanjax.metrics import binary_f1, rank_task_metrics
  gold = [True, True, False, False, True]
  pred = [True, False, True, False, True]
  assert binary_f1(gold, pred) == pytest.approx(100 * 2 * 2 / (3 + 3))  # tp 2, 3 gold, 3 pred
  assert binary_f1([False, False], [False, False]) == 0.0
  examples = [{"answer_index": int(g)} for g in gold]
  assert rank_task_metrics("binary_f1", examples, [int(p) for p in pred]) == {
      "rank_f1": pytest.approx(100 * 2 / 3)}


def test_rank_task_metrics_read_the_examples_fields():
  from flanjax.metrics import rank_task_metrics
  examples = [{"group": b"0-1", "answer_index": 1}, {"group": b"0-1", "answer_index": 0},
              {"group": b"0-2", "answer_index": 1}]
  assert rank_task_metrics("grouped_f1a_em", examples, [1, 0, 0]) == {
      "rank_f1a": pytest.approx(100 * 2 / 3), "rank_em": 50.0}
  values = [{"label_value": b"0.5"}, {"label_value": b"2.2"}, {"label_value": b"4.9"}]
  out = rank_task_metrics("correlation", values, [0, 2, 5])
  assert out["rank_pearson"] == pytest.approx(100 * 0.99987973, abs=1e-5)
  assert out["rank_spearman"] == pytest.approx(100.0)
  with pytest.raises(ValueError, match="'group' field, which example 0 lacks"):
    rank_task_metrics("grouped_f1a_em", values, [0, 1, 2])
  with pytest.raises(ValueError, match="Unknown rank metrics 'f1'"):
    rank_task_metrics("f1", examples, [0, 1, 0])
