"""FLAN 2021 mixtures: flan2021, flan2021_without_<cluster>, flan2021_heldout_<cluster>."""
import json

import flanjax.mixtures  # noqa: F401  (registers the mixtures)
import pytest
import seqio
from flanjax.mixtures import flan2021 as fm
from flanjax.tasks import flan2021

from flanjax import mixing, registration

CLUSTERS = ("nli", "commonsense", "sentiment", "paraphrase", "closed_book_qa", "struct_to_text",
            "translation", "reading_comprehension", "reading_comprehension_with_commonsense",
            "coreference", "misc", "summarization")
RCC = "reading_comprehension_with_commonsense"
# The 16 evaluation-only translation direction tasks: BLEU per direction, as FLAN reports it.
TRANSLATION = {"para_crawl_enes": "es", "wmt14_enfr": "fr",
               **{f"wmt16_translate_{x}en": x for x in ("cs", "de", "fi", "ro", "ru", "tr")}}
DIRECTION_TASKS = {f"flan2021_{key}_{d}" for key, x in TRANSLATION.items()
                   for d in (f"en_to_{x}", f"{x}_to_en")}
MIXED_TRANSLATION_TASKS = {f"flan2021_{key}" for key in TRANSLATION}
# Tasks without a train split: WSC273 (test split only) and the direction tasks.
EVAL_ONLY = {"flan2021_wsc273"} | DIRECTION_TASKS


def _tasks(mixture):
  return {t.name for t in seqio.get_mixture_or_task(mixture).tasks}


def _clusters(tasks):
  return {registration.TASK_INFO[t].cluster for t in tasks}


def test_every_cluster_has_both_mixtures():
  assert fm.CLUSTERS == CLUSTERS
  names = set(seqio.MixtureRegistry.names())
  assert "flan2021" in names
  for c in CLUSTERS:
    assert f"flan2021_without_{c}" in names and f"flan2021_heldout_{c}" in names
  assert len(fm.MIXTURES) == 1 + 2 * len(CLUSTERS) + len(fm.PAPER_EVAL)  # + flan2021_paper_*


def test_flan2021_is_examples_proportional_with_cap_3000():
  tasks = _tasks("flan2021")
  # Every task with a train split; WSC273 (test split only) and the 16 translation direction
  # tasks are evaluation-only. The 8 translation datasets' tasks (both directions) train.
  assert tasks == {s.name for s in flan2021.SPECS} - EVAL_ONLY == set(fm.train_tasks())
  assert tasks == {s.name for s in flan2021.SPECS if s.has_train}
  assert len(tasks) == 67 and _clusters(tasks) == set(CLUSTERS)
  assert MIXED_TRANSLATION_TASKS <= tasks and not DIRECTION_TASKS & tasks
  rates = mixing.effective_rates("flan2021")
  assert sum(rates.values()) == pytest.approx(1.0)
  # min(n, 3000): CB has 250 train examples, ANLI R1 16,946 and MNLI 392,702 (both capped).
  p = {k[len("flan2021_"):]: v for k, v in rates.items()}
  assert p["cb"] / p["anli_r1"] == pytest.approx(250 / 3000)
  assert p["anli_r1"] == pytest.approx(p["mnli_matched"])
  assert p["story_cloze"] / p["xsum"] == pytest.approx(1871 / 3000)
  assert p["opinion_abstracts_idebate"] / p["xsum"] == pytest.approx((2259 - 500) / 3000)
  assert max(rates.values()) == pytest.approx(3000 / sum(
      min(s.num_train_examples, 3000) for s in flan2021.SPECS))


def test_without_mixtures_follow_flans_overlap_rules():
  everything = _tasks("flan2021")
  expected_removed = {
      "nli": {"nli", "paraphrase"}, "paraphrase": {"nli", "paraphrase"},
      "reading_comprehension": {"reading_comprehension", RCC},
      "commonsense": {"commonsense", RCC},
      RCC: {RCC, "reading_comprehension", "commonsense"},  # FLAN: both ways
  }
  for c in CLUSTERS:
    removed = expected_removed.get(c, {c})
    assert set(fm.heldout_clusters(c)) == removed, c
    train = _tasks(f"flan2021_without_{c}")
    assert _clusters(train) == set(CLUSTERS) - removed, c
    assert train == {t for t in everything if registration.TASK_INFO[t].cluster not in removed}
    # No held-out evaluation task is trained on.
    assert not train & _tasks(f"flan2021_heldout_{c}"), c
  rates = mixing.effective_rates("flan2021_without_nli")
  assert sum(rates.values()) == pytest.approx(1.0) and len(rates) == 67 - 10 - 4


def test_heldout_mixtures_are_the_clusters_tasks_with_an_eval_split():
  for c in CLUSTERS:
    tasks = _tasks(f"flan2021_heldout_{c}")
    assert tasks == set(fm.eval_tasks(c)) and _clusters(tasks) == {c}
    if c != "translation":
      assert tasks == set(flan2021.task_names(c)), c
    for t in seqio.get_mixture_or_task(f"flan2021_heldout_{c}").tasks:
      assert flan2021.HELDOUT_EVAL_SPLIT in t.splits, t.name
  assert {"flan2021_wsc", "flan2021_wsc273"} <= _tasks("flan2021_heldout_coreference")
  assert "flan2021_wsc" in _tasks("flan2021") and "flan2021_wsc" not in _tasks(
      "flan2021_without_coreference")
  assert len(_tasks("flan2021_heldout_nli")) == 10  # ANLI x3, MNLI x2 and five more
  assert len(_tasks("flan2021_heldout_summarization")) == 11


def test_heldout_translation_is_the_16_direction_tasks():
  """Each direction is its own task (its own corpus BLEU), not the 8 tasks that mix both."""
  tasks = _tasks("flan2021_heldout_translation")
  assert tasks == DIRECTION_TASKS and len(tasks) == 16
  assert tasks == set(fm.eval_tasks("translation"))
  assert set(flan2021.task_names("translation")) == DIRECTION_TASKS | MIXED_TRANSLATION_TASKS
  rates = mixing.effective_rates("flan2021_heldout_translation")
  assert set(rates) == tasks and all(p == pytest.approx(1 / 16) for p in rates.values())
  for name in tasks:
    info = registration.TASK_INFO[name]
    # evaluation only: no train split (k-shot exemplars come from the exemplars split)
    assert (info.cluster, info.metric, dict(info.splits).keys()) == (
        "translation", "bleu", {"validation", registration.EXEMPLAR_SPLIT}), name
  # The mixed tasks still evaluate on their own (both directions): e.g. `flanjax eval --mixture
  # flan2021_wmt16_translate_deen`.
  deen = seqio.get_mixture_or_task("flan2021_wmt16_translate_deen")
  assert set(deen.splits) == {"train", "validation"}


def test_training_mixtures_are_unchanged_by_the_direction_tasks():
  """flan2021 and every flan2021_without_<cluster>: the 67 training tasks (outside the held-out
  clusters) at min(n_train, 3000) each, as before the direction tasks existed."""
  training = {s.name: s for s in flan2021.SPECS if s.name not in EVAL_ONLY}
  assert len(training) == 67
  for mixture, removed in [("flan2021", set())] + [
      (f"flan2021_without_{c}", set(fm.heldout_clusters(c))) for c in CLUSTERS]:
    expected = {n: min(s.num_train_examples, 3000) for n, s in training.items()
                if s.cluster not in removed}
    rates = mixing.effective_rates(mixture)
    assert set(rates) == set(expected), mixture
    total = sum(expected.values())
    for name, p in rates.items():
      assert p == pytest.approx(expected[name] / total), (mixture, name)
  without = _tasks("flan2021_without_nli")
  assert MIXED_TRANSLATION_TASKS <= without and not DIRECTION_TASKS & without
  assert len(_tasks("flan2021_without_translation")) == 67 - 8


def test_unknown_cluster_names_the_closest():
  with pytest.raises(ValueError, match="Closest: commonsense"):
    fm.heldout_clusters("comonsense")
  with pytest.raises(ValueError, match="valid: nli"):
    fm.eval_tasks("qa")


def test_catalog_tasks_of_different_kinds_mix_and_pack():
  """Static options (CB), per-example options (HellaSwag) and no options (XSum, SQuAD) mix."""
  import tensorflow_datasets as tfds

  names = flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(), prefix="mixtest_",
                                     keys=["cb", "hellaswag", "xsum", "squad_v1"])
  mixing.register_mixture("mixtest_flan2021", names, rate=mixing.examples_rate(3000))
  lengths = {"inputs": 128, "targets": 32}
  with tfds.testing.mock_data(num_examples=5, max_value=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    ds = seqio.get_mixture_or_task("mixtest_flan2021").get_dataset(
        lengths, split="train", shuffle=False, use_cached=False, seed=0)
    ds = seqio.EncDecFeatureConverter(pack=True)(ds, lengths)
    batch = next(iter(ds.batch(4).as_numpy_iterator()))
  assert batch["encoder_input_tokens"].shape == (4, 128)
  assert batch["decoder_target_tokens"].shape == (4, 32)
  assert (batch["encoder_segment_ids"] > 0).any()


def test_own_headlines_closed_book_qa_exact_match_and_record_ranked():
  """FLAN (after GPT-3) reports closed-book NQ and TriviaQA by exact match, and ranks ReCoRD's
  entity options (FLAN's utils.is_classification); every other task keeps its metric kind's
  headline."""
  from flanjax import evaluation, reports
  own = {s.key: registration.TASK_INFO[s.name].headline for s in flan2021.SPECS}
  assert {k: h for k, h in own.items() if h} == {"natural_questions": "em", "trivia_qa": "em",
                                                 "record": "rank_accuracy"}
  squad = {"f1": 60.0, "em": 40.0, "rank_accuracy": 80.0}
  names = ["flan2021_natural_questions", "flan2021_trivia_qa", "flan2021_squad_v1",
           "flan2021_record"]
  info = {n: evaluation.task_meta(seqio.get_mixture_or_task(n)) for n in names}
  res = reports.task_results({n: squad for n in names}, info)
  assert [res["tasks"][n]["primary"] for n in names] == [["em", 40.0], ["em", 40.0],
                                                         ["f1", 60.0], ["rank_accuracy", 80.0]]
  assert res["clusters"]["closed_book_qa"]["score"] == pytest.approx(40.0)
  assert res["clusters"]["reading_comprehension_with_commonsense"]["score"] == pytest.approx(80.0)


def test_record_rank_classification_counts_every_gold_spelling():
  """ReCoRD's options are the passage's entities; an example's gold answers may be several of
  them (spellings of one entity): every one of those options is correct in the scoring rows."""
  import numpy as np
  import tensorflow as tf

  from flanjax import evaluation, metrics, preprocessors
  spec = flan2021._spec_by_key("record")
  raw = tf.data.Dataset.from_tensors({
      "passage": "Alice Smith beat Bob.\n@highlight\nA line", "query": "@placeholder won.",
      "entities": ["Alice Smith", "Bob", "Smith"], "answers": ["Alice Smith", "Smith"],
      "_is_train": False, "_index": tf.constant(0, tf.int64)})
  ds = preprocessors.fields_fn("rec", spec.preprocessor, None)(raw)
  ds = preprocessors.render_fn("rec", spec.templates(), mode="instruction", dataset="record",
                               cluster=spec.cluster)(ds)
  ex, = preprocessors.drop_index(ds).as_numpy_iterator()
  assert ex["options"].tolist() == [b"Alice Smith won.", b"Bob won.", b"Smith won."]
  rows = list(preprocessors.scoring_fn(ds).as_numpy_iterator())
  assert [bool(r["is_correct"]) for r in rows] == [True, False, True]
  # The model prefers the second gold spelling: right, in both rank-classification paths.
  scores = [-3.0, -2.0, -1.0]
  assert metrics.rank_classification(
      [(tuple(r["idx"]), r["is_correct"]) for r in rows], scores) == {"rank_accuracy": 100.0}

  class Fns:
    def score(self, batch):
      return np.asarray(scores, np.float32)
  ex["inputs"] = np.asarray([5, 1], np.int32)
  option_scores, answers = evaluation._rank_options(Fns(), [ex], seqio.ByteVocabulary(), 8, 1, 0)
  assert answers == [[0, 2]]
  assert metrics.rank_options(option_scores, answers) == {"rank_accuracy": 100.0}


def test_paper_mixtures_are_the_flan_papers_gpt3_comparison():
  """flan2021_paper_<cluster>: the 25 datasets the FLAN paper compares with GPT-3 (7 clusters),
  each a subset of the cluster's held-out evaluation tasks, at equal rates."""
  papers = {c: _tasks(f"flan2021_paper_{c}") for c in fm.PAPER_EVAL}
  assert sum(len(t) for t in papers.values()) == 25
  assert papers["nli"] == {f"flan2021_{k}" for k in ("anli_r1", "anli_r2", "anli_r3", "cb",
                                                      "rte")}
  assert len(papers["translation"]) == 6  # En<->Fr, En<->De, En<->Ro, each direction its own
  for c, tasks in papers.items():
    assert tasks <= set(fm.eval_tasks(c)), c
    rates = mixing.effective_rates(f"flan2021_paper_{c}")
    assert all(p == pytest.approx(1 / len(tasks)) for p in rates.values())
  with pytest.raises(ValueError, match="compares no 'sentiment' datasets"):
    fm.paper_eval_tasks("sentiment")


def test_multirc_and_stsb_carry_what_their_rank_metrics_read():
  """Under mock_data (examples from the builders' real feature specs): MultiRC's evaluated
  examples carry their question as `group`, STS-B's the float score as `label_value`, and
  rank_task_metrics computes F1a / EM and the correlations from them."""
  import tensorflow_datasets as tfds

  from flanjax import metrics
  names = flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(), prefix="rankm_",
                                     keys=["multirc", "stsb"])
  assert [registration.TASK_INFO[n].rank_metrics for n in names] == ["grouped_f1a_em",
                                                                       "correlation"]
  own = {s.key: registration.TASK_INFO[s.name].rank_metrics for s in flan2021.SPECS}
  assert {k: v for k, v in own.items() if v} == {
      "glue_mrpc": "binary_f1", "glue_qqp": "binary_f1", "multirc": "grouped_f1a_em",
      "stsb": "correlation"}
  lengths = {"inputs": 256, "targets": 16}
  with tfds.testing.mock_data(num_examples=6, max_value=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    got = {}
    for n in names:
      ds = seqio.get_mixture_or_task(n).get_dataset(lengths, split="validation", shuffle=False,
                                                    use_cached=False, num_epochs=1)
      got[n] = list(ds.as_numpy_iterator())
  multirc, stsb = got["rankm_multirc"], got["rankm_stsb"]
  assert multirc and all(b"-" in ex["group"] for ex in multirc)
  assert all([o.decode() for o in ex["options"]] == ["no", "yes"] for ex in multirc)
  out = metrics.rank_task_metrics("grouped_f1a_em", multirc,
                                  [int(ex["answer_index"]) for ex in multirc])
  assert out["rank_em"] == 100.0  # the gold answers as winners
  assert stsb and all(0.0 <= float(ex["label_value"]) for ex in stsb)
  values = [float(ex["label_value"]) for ex in stsb]
  expected = metrics.correlations(values, [float(ex["answer_index"]) for ex in stsb])
  assert metrics.rank_task_metrics("correlation", stsb, [
      int(ex["answer_index"]) for ex in stsb]) == {f"rank_{k}": v for k, v in expected.items()}


def test_two_training_steps_and_an_evaluation_on_catalog_tasks_under_mock_data(tmp_path):
  """The catalog end to end on tfds.testing.mock_data (examples from each dataset's real feature
  spec): a 2-step train on a mixture of an options task (CB) and a free-text one (SQuAD), then
  `evaluate` of both on their validation splits (rank classification and SQuAD's metric)."""
  import gc

  import numpy as np
  import tensorflow_datasets as tfds

  from flanjax import checkpoints, evaluation, reports, vocab
  from flanjax.config import get_config
  from flanjax.train import train
  names = flan2021.register_flan2021(vocabulary=vocab.offline_vocabulary(), prefix="e2emock_",
                                     keys=["cb", "squad_v1"])
  mixing.register_mixture("e2emock_mix", names, rate=mixing.examples_rate(3000))
  run = tmp_path / "run"
  with tfds.testing.mock_data(num_examples=8, max_value=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    train(model_dir=str(run), model_config=get_config("tiny", vocab_size=1024, dtype="float32"),
          mixture="e2emock_mix", task_feature_lengths={"inputs": 64, "targets": 16},
          batch_size=4, num_steps=2, checkpoint_period=2, log_period=1, progress=False,
          async_checkpointing=False)
    evaluation.evaluate(str(run), names, output_dir=str(tmp_path / "eval"), max_examples=4,
                        batch_size=4, max_decode_length=8)
    gc.collect()  # a live iterator over mock data's generator would block interpreter exit
  losses = [json.loads(line)["loss"] for line in open(run / "metrics.jsonl")
            if json.loads(line)["split"] == "train"]
  assert len(losses) == 2 and all(np.isfinite(losses))
  m = reports.read_metrics(str(tmp_path / "eval"))
  tasks = m["tasks"]
  assert set(tasks) == set(names)
  assert tasks["e2emock_cb"]["num_examples"] == tasks["e2emock_squad_v1"]["num_examples"] == 4
  assert tasks["e2emock_cb"]["primary"][0] == "rank_accuracy"
  assert 0 <= tasks["e2emock_cb"]["metrics"]["rank_accuracy"] <= 100
  assert {"em", "f1"} == set(tasks["e2emock_squad_v1"]["metrics"])
  assert checkpoints.finalized_steps(str(run), checkpoints.TrainCheckpointManager.ITEMS) == [2]
