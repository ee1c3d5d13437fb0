"""register_tfds_task / register_file_task, variants, errors, rank classification rows."""
import collections
import json

import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

from flanjax import registration
from flanjax.errors import FlanjaxError
from flanjax.templates import Template, TemplateError

LENGTHS = {"inputs": 256, "targets": 16}
CB_TEMPLATES = [
    Template("{premise}\nDoes this imply \"{hypothesis}\"?{options_}", "{answer}"),
    Template("Premise: {premise}\nHypothesis: {hypothesis}{options_}", "{answer}"),
    Template("{premise}\nWrite a consequence.", "{hypothesis}", inverted=True),
]


def _vocab():
  from flanjax import vocab
  return vocab.offline_vocabulary()


def _cb_pre(ex):
  return {"premise": ex["premise"], "hypothesis": ex["hypothesis"],
          "answer": tf.gather(tf.constant(["yes", "no", "maybe"]), ex["label"])}


@pytest.fixture(scope="module")
def cb_task():
  name = "regtest_cb"
  if name not in seqio.TaskRegistry.names():
    registration.register_tfds_task(
        name, "super_glue/cb:1.0.2", cluster="nli", templates=CB_TEMPLATES, preprocessor=_cb_pre,
        splits={"train": "train", "validation": "validation"}, metric="accuracy",
        options=["yes", "no", "maybe"], vocabulary=_vocab(), max_eval_examples=4)
  return name


def _examples(name, split="validation", n=5, seed=None):
  with tfds.testing.mock_data(num_examples=n):
    ds = seqio.get_mixture_or_task(name).get_dataset(
        LENGTHS, split=split, shuffle=seed is not None, seed=seed, use_cached=False,
        num_epochs=1)
    return list(ds.as_numpy_iterator())


def test_tfds_task_under_mock_data(cb_task):
  info = registration.TASK_INFO[cb_task]
  assert (info.cluster, info.metric, info.has_options, info.dataset) == (
      "nli", "accuracy", True, "super_glue/cb")
  exs = _examples(cb_task)
  assert len(exs) == 5
  for ex in exs:
    inputs = ex["inputs_pretokenized"].decode()
    assert inputs.endswith("\n\nOPTIONS:\n- yes\n- no\n- maybe")
    assert ex["options"].tolist() == [b"yes", b"no", b"maybe"]
    target = ex["targets_pretokenized"].decode()
    assert target in ("yes", "no", "maybe")  # eval never uses the inverted template
    assert ex["answer_index"] == ["yes", "no", "maybe"].index(target)
    assert ex["inputs"][-1] == 1 and len(ex["targets"]) >= 2


def test_train_uses_inverted_and_is_deterministic(cb_task):
  a = _examples(cb_task, "train", n=40, seed=3)
  b = _examples(cb_task, "train", n=40, seed=3)
  assert [x["inputs_pretokenized"] for x in a] == [x["inputs_pretokenized"] for x in b]
  assert any(b"Write a consequence." in x["inputs_pretokenized"] for x in a)


def test_variants(cb_task):
  raw = _examples(cb_task, n=3)
  nt = _examples(registration.task_variant(cb_task, mode="no_template"), n=3)
  dn = _examples(registration.task_variant(cb_task, mode="dataset_name"), n=3)
  no = _examples(registration.task_variant(cb_task, options=False), n=3)
  for r, x, y, z in zip(raw, nt, dn, no):
    assert y["inputs_pretokenized"].startswith(b"[Nli: super_glue/cb] ")
    assert y["inputs_pretokenized"][len(b"[Nli: super_glue/cb] "):] == x["inputs_pretokenized"]
    assert x["inputs_pretokenized"].endswith(b"OPTIONS:\n- yes\n- no\n- maybe")
    assert b"OPTIONS" not in z["inputs_pretokenized"]
    assert r["targets_pretokenized"] == x["targets_pretokenized"] == z["targets_pretokenized"]
  assert registration.TASK_INFO[f"{cb_task}__no_template"].base == cb_task


def test_few_shot(cb_task):
  name = registration.task_variant(cb_task, num_shots=2)
  exs = _examples(name, n=5)
  zero = _examples(cb_task, n=5)
  for ex, z in zip(exs, zero):
    inputs = ex["inputs_pretokenized"].decode()
    assert inputs.endswith(z["inputs_pretokenized"].decode())  # the example itself comes last
    shots = inputs[:-len(z["inputs_pretokenized"].decode())].split("\n\nOPTIONS:")
    assert inputs.count("OPTIONS:") == 3  # two exemplars + the example
    assert len(shots) >= 2
    assert len(ex["inputs"]) <= LENGTHS["inputs"]
  # Pruned to fit a short input length: fewer exemplars, never over the length.
  with tfds.testing.mock_data(num_examples=5):
    ds = seqio.get_mixture_or_task(name).get_dataset(
        {"inputs": 60, "targets": 8}, split="validation", shuffle=False, use_cached=False,
        num_epochs=1, trim_output_features=False)
    short = list(ds.as_numpy_iterator())
  assert all(x["inputs_pretokenized"].decode().count("OPTIONS:") < 3 for x in short)


def test_few_shot_exemplars_use_the_examples_own_template(file_task):
  """Each k-shot prompt shows its exemplars in the query's template (FLAN: one template per
  prompt), for every template, and inverted (training-only) templates too."""
  rows = "".join(json.dumps({"review": f"film {i}", "label": "positive"}) + "\n"
                 for i in range(12))
  templates = [Template("AAA {review}{options_}", "{answer}"),
               Template("BBB {review}{options_}", "{answer}"),
               Template("CCC {review}{options_}", "{answer}"),
               Template("ZZZ {answer}: write a review.", "{review}", inverted=True)]
  name, _ = file_task("regtest_shots_template", rows, templates=templates)
  shot = registration.task_variant(name, num_shots=3)
  ds = seqio.get_mixture_or_task(shot).get_dataset(
      {"inputs": 512, "targets": 64}, split="train", shuffle=False, use_cached=False,
      num_epochs=1)
  seen = set()
  for ex in ds.as_numpy_iterator():
    blocks = ex["inputs_pretokenized"].decode().split("\n\n")
    heads = {b[:3] for b in blocks if b[:3] in ("AAA", "BBB", "CCC", "ZZZ")}
    assert len(heads) == 1, blocks  # exemplars and the example: one template
    assert sum(b.startswith(tuple(heads)) for b in blocks) == 4  # 3 exemplars + the example
    seen |= heads
  assert len(seen) >= 3  # the examples' templates vary; each prompt keeps its own


def test_scoring_rows(cb_task):
  name = registration.task_variant(cb_task, scoring=True)
  rows = _examples(name, n=2)
  assert len(rows) == 6  # 2 examples x 3 options
  assert [r["idx"].tolist() for r in rows[:3]] == [[0, 0], [0, 1], [0, 2]]
  assert sum(r["is_correct"] for r in rows[:3]) == 1
  assert rows[0]["inputs_pretokenized"] == rows[1]["inputs_pretokenized"]
  task = seqio.get_mixture_or_task(name)
  assert task.postprocess_fn("x", example=rows[1], is_target=True) == ((0, 1),
                                                                       bool(rows[1]["is_correct"]))
  assert [f.__name__ for f in task.score_metric_fns] == ["rank_classification"]
  ex = _examples(cb_task, n=1)[0]
  py_rows = registration.rank_classification_examples(ex)
  assert [r["targets"] for r in py_rows] == ["yes", "no", "maybe"]
  assert [r["is_correct"] for r in py_rows].index(True) == ex["answer_index"]


def test_not_prepared_error(tmp_path):
  name = "regtest_rte_unprepared"
  if name not in seqio.TaskRegistry.names():
    registration.register_tfds_task(
        name, "glue/rte:2.0.0", cluster="nli", templates=CB_TEMPLATES[:1],
        preprocessor=lambda ex: {"premise": ex["sentence1"], "hypothesis": ex["sentence2"],
                                 "answer": tf.gather(tf.constant(["yes", "no"]), ex["label"])},
        splits={"train": "train"}, metric="accuracy", options=["yes", "no"],
        vocabulary=_vocab(), tfds_data_dir=str(tmp_path))
  with pytest.raises(registration.DatasetNotPreparedError) as e:
    seqio.get_mixture_or_task(name).get_dataset(LENGTHS, split="train", use_cached=False)
  msg = str(e.value)
  assert "'glue/rte:2.0.0'" in msg and str(tmp_path) in msg and "tfds build glue/rte" in msg
  assert isinstance(e.value, FlanjaxError) and "\n" not in msg  # the CLI prints one line
  assert "--manual_dir" not in msg


def test_not_prepared_manual_download_says_where_to_get_the_files(tmp_path):
  msg = registration.not_prepared_message("story_cloze/2016:1.0.0", str(tmp_path))
  assert "\n" not in msg and str(tmp_path) in msg
  assert f"tfds build story_cloze/2016 --data_dir={tmp_path} --manual_dir=" in msg
  assert "https://www.cs.rochester.edu/nlp/rocstories/" in msg
  xsum = registration.not_prepared_message("xsum:1.2.0", None)
  assert "--manual_dir" in xsum and "github.com/EdinburghNLP/XSum" in xsum
  # WMT: TFDS's builder says "some of the wmt configs" need files; only cs-en and ru-en do.
  deen = registration.not_prepared_message("wmt16_translate/de-en:1.0.0", None)
  assert "Prepare it with: tfds build wmt16_translate/de-en " in deen
  assert "manual" not in deen
  ruen = registration.not_prepared_message("wmt16_translate/ru-en:1.0.0", None)
  assert "get 1mcorpus.zip from https://translate.yandex.ru/corpus" in ruen
  assert "tfds build wmt16_translate/ru-en --manual_dir=" in ruen


def test_missing_field_error():
  name = "regtest_badfield"
  if name not in seqio.TaskRegistry.names():
    registration.register_tfds_task(
        name, "super_glue/cb:1.0.2", cluster="nli", preprocessor=_cb_pre, metric="accuracy",
        templates=[CB_TEMPLATES[0], Template("{premis}{options_}", "{answer}")],
        splits={"validation": "validation"}, options=["yes", "no", "maybe"], vocabulary=_vocab())
  with pytest.raises(TemplateError, match=r"'regtest_badfield', template 1: field '\{premis\}'"):
    _examples(name)


def test_scoring_rows_mark_every_gold_answer_correct(tmp_path):
  """An option equal to any of the example's references is correct (ReCoRD's spellings of the
  answer entity), in the scoring variant's rows and in rank_classification_examples."""
  from flanjax import metrics
  p = tmp_path / "validation.jsonl"
  rows = [{"q": "Who won?", "options": ["Alice Smith won.", "Bob won.", "Smith won."],
           "answer": "Alice Smith won.", "refs": ["Alice Smith won.", "Smith won."]},
          {"q": "Sky?", "options": ["blue", "green"], "answer": "blue", "refs": ["blue"]}]
  p.write_text("".join(json.dumps(r) + "\n" for r in rows))
  registration.register_file_task(
      "regtest_multi_gold", {"validation": str(p)}, metric="squad", vocabulary=_vocab(),
      templates=[Template("{q}{options_}", "{answer}")],
      # A JSON list column is a tf.string [n] field (it had been one joined string).
      preprocessor=lambda ex: {"q": ex["q"], "options": ex["options"], "answer": ex["answer"],
                               "references": ex["refs"]})
  name = registration.task_variant("regtest_multi_gold", scoring=True)
  ds = seqio.get_mixture_or_task(name).get_dataset(LENGTHS, split="validation", shuffle=False,
                                                   use_cached=False, num_epochs=1)
  scored = list(ds.as_numpy_iterator())
  assert [(r["idx"].tolist(), bool(r["is_correct"])) for r in scored] == [
      ([0, 0], True), ([0, 1], False), ([0, 2], True), ([1, 0], True), ([1, 1], False)]
  # The model prefers the second spelling: right, as in T5's rank classification.
  targets = [(tuple(r["idx"]), bool(r["is_correct"])) for r in scored]
  assert metrics.rank_classification(targets, [-3.0, -2.0, -1.0, -1.0, -2.0]) == {
      "rank_accuracy": 100.0}
  ex = next(seqio.get_mixture_or_task("regtest_multi_gold").get_dataset(
      LENGTHS, split="validation", shuffle=False, use_cached=False,
      num_epochs=1).as_numpy_iterator())
  assert [r["is_correct"] for r in registration.rank_classification_examples(ex)] == [
      True, False, True]


def test_registration_argument_errors():
  with pytest.raises(ValueError, match="metric 'acc'.*accuracy"):
    registration.register_tfds_task("regtest_x", "glue/rte", cluster="nli", metric="acc",
                                    templates=CB_TEMPLATES, preprocessor=None,
                                    splits={"train": "train"})
  with pytest.raises(KeyError, match="Closest: regtest_cb"):
    registration.task_variant("regtest_cbb", mode="no_template")
  with pytest.raises(FlanjaxError, match="^Unknown base task 'regtest_cbb'"):  # unquoted
    registration.task_variant("regtest_cbb")
  assert issubclass(TemplateError, FlanjaxError)


def test_a_tasks_own_headline_metric(tmp_path):
  p = tmp_path / "validation.jsonl"
  p.write_text(json.dumps({"question": "Capital of France?", "answer": "Paris"}) + "\n")
  templates = [Template("{question}", "{answer}")]
  registration.register_file_task("regtest_headline_em", {"validation": str(p)}, metric="squad",
                                  headline="em", templates=templates, vocabulary=_vocab())
  info = registration.TASK_INFO["regtest_headline_em"]
  assert info.headline == "em"
  variant = registration.task_variant("regtest_headline_em", mode="no_template")
  assert registration.TASK_INFO[variant].headline == "em"  # variants keep it
  registration.register_file_task("regtest_headline_default", {"validation": str(p)},
                                  metric="squad", templates=templates, vocabulary=_vocab())
  assert registration.TASK_INFO["regtest_headline_default"].headline == ""  # the kind's (f1)
  assert registration.TaskInfo("nli", "accuracy", True, "d").headline == ""
  with pytest.raises(FlanjaxError, match="^Task 'regtest_headline_bad': Headline metric 'bleu' "
                                         "is not one of the 'squad' metrics"):
    registration.register_file_task("regtest_headline_bad", {"validation": str(p)},
                                    metric="squad", headline="bleu", templates=templates,
                                    vocabulary=_vocab())
  assert "regtest_headline_bad" not in registration.TASK_INFO
  with pytest.raises(FlanjaxError, match="did you mean 'em'"):
    registration.register_tfds_task("regtest_headline_bad2", "glue/rte", cluster="nli",
                                    metric="squad", headline="EM", templates=CB_TEMPLATES,
                                    preprocessor=None, splits={"train": "train"})


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv"])
def test_file_task(tmp_path, fmt):
  rows = [{"question": f"What is {i} plus 1?", "answer": str(i + 1)} for i in range(6)]
  paths = {}
  for split, part in (("train", rows[:4]), ("validation", rows[4:])):
    p = tmp_path / f"{split}.{fmt}"
    if fmt == "jsonl":
      p.write_text("".join(json.dumps(r) + "\n" for r in part))
    else:
      sep = "," if fmt == "csv" else "\t"
      p.write_text("question" + sep + "answer\n" +
                   "".join(f"{r['question']}{sep}{r['answer']}\n" for r in part))
    paths[split] = str(p)
  name = f"regtest_file_{fmt}"
  registration.register_file_task(
      name, paths, cluster="math", metric="accuracy", vocabulary=_vocab(), max_train_examples=3,
      templates=[Template("{question}", "{answer}"), Template("Q: {question} A:", "{answer}")])
  train = seqio.get_mixture_or_task(name).get_dataset(LENGTHS, split="train", shuffle=False,
                                                      use_cached=False, num_epochs=1)
  assert len(list(train.as_numpy_iterator())) == 3  # capped
  ds = seqio.get_mixture_or_task(name).get_dataset(LENGTHS, split="validation", shuffle=False,
                                                   use_cached=False, num_epochs=1)
  exs = list(ds.as_numpy_iterator())
  assert [x["targets_pretokenized"] for x in exs] == [b"5", b"6"]
  assert exs[0]["inputs_pretokenized"].decode() in ("What is 4 plus 1?", "Q: What is 4 plus 1? A:")


def test_file_task_with_per_example_options(tmp_path):
  p = tmp_path / "train.jsonl"
  p.write_text(json.dumps({"q": "Sky?", "options": ["blue", "green"], "answer": "blue"}) + "\n")
  registration.register_file_task(
      "regtest_file_opts", {"train": str(p)}, metric="accuracy", vocabulary=_vocab(),
      templates=[Template("{q}{options_}", "{answer}")])
  ex = next(seqio.get_mixture_or_task("regtest_file_opts").get_dataset(
      LENGTHS, split="train", shuffle=False, use_cached=False, num_epochs=1).as_numpy_iterator())
  assert ex["inputs_pretokenized"] == b"Sky?\n\nOPTIONS:\n- blue\n- green"
  assert ex["answer_index"] == 0


def test_few_shot_never_includes_the_example_itself(cb_task):
  name = registration.task_variant(cb_task, num_shots=4)
  with tfds.testing.mock_data(num_examples=5):
    raw = list(tfds.load("super_glue/cb:1.0.2", split="train").as_numpy_iterator())
    ds = seqio.get_mixture_or_task(name).get_dataset(
        {"inputs": 2048, "targets": 64}, split="train", shuffle=False, use_cached=False,
        num_epochs=1)
    exs = list(ds.as_numpy_iterator())
  premises = [r["premise"].decode() for r in raw]
  assert len(set(premises)) == 5
  for ex in exs:
    inputs = ex["inputs_pretokenized"].decode()
    counts = [inputs.count(p) for p in premises]
    assert counts == [1, 1, 1, 1, 1], counts  # 4 other exemplars + the example, once each


def test_few_shot_exemplars_never_push_the_example_out_of_the_input():
  """The exemplars' token counts, summed piece by piece, are an estimate: the whole input is
  checked, and exemplars dropped until the example fits (4 of 41 sentiment prompts at 96
  tokens had lost the end of their question, the OPTIONS block)."""
  import flanjax.tasks  # noqa: F401  (offline tasks; their data is generated locally)

  from flanjax import vocab
  vocabulary = vocab.offline_vocabulary()
  lengths = {"inputs": 96, "targets": 32}

  def rows(task):
    return list(seqio.get_mixture_or_task(task).get_dataset(
        lengths, split="validation", shuffle=False, use_cached=False, num_epochs=1)
        .take(60).as_numpy_iterator())

  shots = rows(registration.task_variant("offline_sentiment", num_shots=5))
  with_exemplars = 0
  for base, ex in zip(rows("offline_sentiment"), shots):
    text = ex["inputs_pretokenized"]
    assert text.endswith(base["inputs_pretokenized"])
    if len(text) > len(base["inputs_pretokenized"]):
      with_exemplars += 1
      assert len(vocabulary.encode(text.decode())) + 1 <= lengths["inputs"]
  assert with_exemplars > 0


# ------------------------------------------------------------------------------------------
# Bad data and a missing vocabulary: one FlanjaxError naming the task / file / line / field.

REVIEW_TEMPLATES = [Template("{review}\nIs this review positive or negative?{options_}",
                             "{answer}")]


def _review_pre(ex):
  return {"review": ex["review"], "answer": ex["label"]}


@pytest.fixture
def file_task(tmp_path):
  """register(name, text, ext="jsonl", **kw): a one-split file task, removed afterwards."""
  names = []

  def register(name, text, ext="jsonl", **kw):
    p = tmp_path / f"{name}.{ext}"
    p.write_text(text)
    kw.setdefault("vocabulary", _vocab())
    kw.setdefault("preprocessor", _review_pre)
    kw.setdefault("templates", REVIEW_TEMPLATES)
    names.append(name)
    registration.register_file_task(name, {"train": str(p)}, metric="accuracy",
                                    options=["negative", "positive"], **kw)
    return name, str(p)

  yield register
  for name in names:
    if name in seqio.TaskRegistry.names():
      seqio.TaskRegistry.remove(name)
    registration.TASK_INFO.pop(name, None)
    registration._BUILDERS.pop(name, None)


def _one_line_error(name, err=FlanjaxError):
  with pytest.raises(err) as e:
    seqio.get_mixture_or_task(name).get_dataset(LENGTHS, split="train", shuffle=False,
                                                use_cached=False, num_epochs=1)
  msg = str(e.value)
  assert isinstance(e.value, FlanjaxError) and "\n" not in msg, msg
  return msg


ROWS = "".join(json.dumps({"review": f"film {i}", "label": "positive"}) + "\n" for i in range(3))


def test_missing_t5_vocabulary_is_one_error_before_tf_data(file_task, tmp_path, monkeypatch):
  from flanjax import vocab
  missing = str(tmp_path / "no_spiece.model")
  monkeypatch.setenv("FLANJAX_T5_VOCAB", missing)
  name, _ = file_task("regtest_vocab_missing", ROWS, vocabulary=None)
  msg = _one_line_error(name, vocab.VocabularyError)
  assert f"{missing!r} not found" in msg and "FLANJAX_T5_VOCAB=/path/to/spiece.model" in msg
  assert "the built-in catalog (flan2021_*) reads it there" in msg and "vocabulary=" in msg
  # An unreadable default path (gs:// offline): the reason, not a tf traceback.
  real_exists = tf.io.gfile.exists

  def offline_exists(path):
    if path.startswith("gs://"):
      raise tf.errors.FailedPreconditionError(
          None, None, "Error executing an HTTP request: libcurl code 6, error details: Could "
          f"not resolve host: www.googleapis.com when reading metadata of {path}")
    return real_exists(path)

  monkeypatch.setattr(tf.io.gfile, "exists", offline_exists)
  monkeypatch.delenv("FLANJAX_T5_VOCAB")
  name, _ = file_task("regtest_vocab_gcs", ROWS, vocabulary=None)
  msg = _one_line_error(name, vocab.VocabularyError)
  assert vocab.T5_GCS_VOCAB in msg and "cannot be read (FailedPreconditionError: Could not " \
      "resolve host: www.googleapis.com)" in msg and "FLANJAX_T5_VOCAB=" in msg
  with pytest.raises(vocab.VocabularyError, match="cannot be read"):
    vocab.default_vocabulary().encode("hi")  # the tokenizer's own read explains it too


def test_unreadable_given_vocabulary_names_the_task(file_task, tmp_path):
  bad = tmp_path / "junk.model"
  bad.write_text("not a sentencepiece model")
  name, _ = file_task("regtest_vocab_junk", ROWS,
                      vocabulary=seqio.SentencePieceVocabulary(str(bad), extra_ids=100))
  msg = _one_line_error(name)
  assert msg.startswith(f"Task 'regtest_vocab_junk': its vocabulary's SentencePiece model "
                        f"{str(bad)!r} is not a SentencePiece model")
  name, _ = file_task("regtest_vocab_nofile", ROWS, vocabulary=seqio.SentencePieceVocabulary(
      str(tmp_path / "gone.model"), extra_ids=100))
  assert "gone.model' not found" in _one_line_error(name)


def test_csv_missing_a_column_the_preprocessor_reads(file_task):
  name, path = file_task("regtest_csv_nocol", "text,label\nnice film,positive\n", ext="csv")
  msg = _one_line_error(name)
  assert msg == (f"Task 'regtest_csv_nocol': the preprocessor reads field 'review', which file "
                 f"{path} does not have (fields: label, text). Fix the preprocessor or the data.")
  # Checked when the file is first read, so the mixing rates' example count says so too.
  with pytest.raises(FlanjaxError, match="reads field 'review'"):
    seqio.get_mixture_or_task(name).num_input_examples("train")


def test_preprocessor_output_checked_against_answer_and_templates(file_task):
  name, path = file_task("regtest_no_answer", ROWS, preprocessor=None)
  msg = _one_line_error(name)
  assert "must emit 'answer'" in msg and "it emits only label, review" in msg and path in msg
  name, path = file_task("regtest_tmpl_field", ROWS, preprocessor=lambda ex: {
      "text": ex["review"], "answer": ex["label"]})
  msg = _one_line_error(name, TemplateError)
  assert msg.startswith("Task 'regtest_tmpl_field', template 0: field '{review}' is not in the "
                        f"example from file {path} (fields: answer, answer_index, options, text)")


def test_tfds_preprocessor_errors_are_one_line(tmp_path):
  """Without a file to check first, the tf.data step itself explains (no StagingError)."""
  name = "regtest_cb_premis"
  if name not in seqio.TaskRegistry.names():
    registration.register_tfds_task(
        name, "super_glue/cb:1.0.2", cluster="nli", templates=CB_TEMPLATES[:1],
        preprocessor=lambda ex: {"premise": ex["premis"], "hypothesis": ex["hypothesis"],
                                 "answer": tf.gather(tf.constant(["yes", "no", "maybe"]),
                                                     ex["label"])},
        splits={"validation": "validation"}, metric="accuracy",
        options=["yes", "no", "maybe"], vocabulary=_vocab())
  with pytest.raises(FlanjaxError) as e:
    _examples(name)
  msg = str(e.value)
  assert "\n" not in msg and msg.startswith(
      "Task 'regtest_cb_premis': the preprocessor reads field 'premis', which TFDS dataset "
      "'super_glue/cb:1.0.2' does not have (fields: hypothesis, idx, label, premise).")
  assert "Did you mean 'premise'?" in msg
  name = "regtest_cb_noanswer"
  if name not in seqio.TaskRegistry.names():
    registration.register_tfds_task(
        name, "super_glue/cb:1.0.2", cluster="nli", templates=CB_TEMPLATES[:1],
        preprocessor=lambda ex: {"premise": ex["premise"], "hypothesis": ex["hypothesis"]},
        splits={"validation": "validation"}, metric="accuracy",
        options=["yes", "no", "maybe"], vocabulary=_vocab())
  with pytest.raises(FlanjaxError, match=r"^Task 'regtest_cb_noanswer': an option task's "
                                         r"preprocessor must emit 'answer'.*hypothesis, premise"):
    _examples(name)


@pytest.mark.parametrize("text, error", [
    ('{"review": "a", "label": ["x"]}\n{"review": "b", "label": "y"}\n',
     r":2: 'label' is a single value here but a list at line 1; give it the same type"),
    (ROWS + '["film", "positive"]\n', r":4: a list, not a JSON object"),
    (ROWS + '{"review": "x", "label": "positive"\n', r":4: not valid JSON"),
])
def test_malformed_jsonl_rows(tmp_path, text, error):
  p = tmp_path / "rows.jsonl"
  p.write_text(text)
  with pytest.raises(FlanjaxError, match=f"^{p}{error}"):
    registration._read_rows(str(p), "jsonl")


def test_jsonl_fields_are_the_keys_every_row_has(tmp_path):
  p = tmp_path / "rows.jsonl"
  p.write_text('{"review": "a", "label": "x", "id": 1}\n\n{"review": "b", "label": "y"}\n'
               '{"review": "c", "label": "z", "note": ["n"]}\n{"review": "d", "label": "z", '
               '"note": "m"}\n')
  got = registration._read_rows(str(p), "jsonl")
  assert got.fields == ["review", "label"] and len(got.rows) == 4
  # A key only some rows have: (first line without it, first line with it, that row's keys);
  # its type may differ between rows (it is not a field).
  assert got.gaps == {"id": (3, 1, ["review", "label"]), "note": (1, 4, ["review", "label", "id"])}


@pytest.mark.parametrize("ext, text, error", [
    ("csv", "review,label\nnice,positive\nno label\n",
     r":3: 1 fields, the header has 2 \(review, label\): no 'label'. Quote fields that contain ','"),
    ("tsv", "review\tlabel\nnice\tpositive\tnegative\n",
     r":2: 3 fields, the header has 2 \(review, label\): 1 more than the header's columns\. A "
     r"TSV field cannot hold a tab"),
    ("csv", "review,review\na,b\n", r":1: the header names column 'review' twice"),
    # A stray quote had run the following rows together into one field, silently.
    ("csv", 'review,label\n"5 stars,positive\nbad film,negative\nok film "meh",negative\n',
     r":4: ',' expected after '\"': a quote that is not closed, or text after a closing one\?"),
])
def test_csv_rows_must_have_the_headers_fields(tmp_path, ext, text, error):
  p = tmp_path / f"rows.{ext}"
  p.write_text(text)
  with pytest.raises(FlanjaxError, match=f"^{p}{error}"):
    registration._read_rows(str(p), ext)


def test_tsv_fields_are_taken_as_they_are(tmp_path):
  """TSV has no quoting: quotes are text, and a stray one no longer swallows the next rows."""
  p = tmp_path / "rows.tsv"
  p.write_text('review\tlabel\n"Great" film, loved it\tpositive\n"5 stars\tpositive\n'
               'ok film "meh"\tnegative\n')
  got = registration._read_rows(str(p), "tsv")
  assert [r["review"] for r in got.rows] == ['"Great" film, loved it', '"5 stars',
                                             'ok film "meh"']
  # CSV keeps its quoting: a quoted field may hold the delimiter.
  p = tmp_path / "rows.csv"
  p.write_text('review,label\n"Great, loved it",positive\n"say ""hi""",negative\n')
  assert [r["review"] for r in registration._read_rows(str(p), "csv").rows] == [
      "Great, loved it", 'say "hi"']


def test_rows_with_optional_keys_the_task_does_not_read(file_task, tmp_path):
  """A key only some rows have is ignored, whether the first row or a later one has it."""
  for i, text in enumerate([
      '{"review": "good", "label": "positive", "id": 1}\n{"review": "bad", "label": "negative"}\n',
      '{"review": "good", "label": "positive"}\n{"review": "bad", "label": "negative", "id": 7}\n',
  ]):
    name, _ = file_task(f"regtest_optional_key{i}", text)
    exs = _examples(name, split="train")
    assert [x["targets_pretokenized"] for x in exs] == [b"positive", b"negative"]
    assert seqio.get_mixture_or_task(name).num_input_examples("train") == 2


def test_a_key_the_task_reads_must_be_in_every_row(file_task):
  name, path = file_task("regtest_ragged", ROWS + '{"review": "no label here"}\n')
  assert _one_line_error(name) == (
      f"{path}:4: the row has no 'label', which task 'regtest_ragged' reads (line 1 has it); give "
      "every row 'label', or stop reading it in the preprocessor / templates.")
  # Only a later row has it; the first row without it is named, with a likely typo.
  name, path = file_task("regtest_late_key", '{"review": "a", "lable": "x"}\n'
                         '{"review": "b", "label": "positive"}\n')
  assert _one_line_error(name).startswith(
      f"{path}:1: the row has no 'label' (it has 'lable': a typo?), which task "
      "'regtest_late_key' reads (line 2 has it);")
  # A template field the preprocessor passes through (no preprocessor) counts too.
  name, path = file_task("regtest_late_tmpl", '{"review": "a", "answer": "positive"}\n'
                         '{"review": "b", "answer": "negative", "hint": "h"}\n',
                         preprocessor=None, templates=[Template("{review} {hint}", "{answer}")])
  assert _one_line_error(name).startswith(f"{path}:1: the row has no 'hint', which task ")
  # A field no row has is still the preprocessor check's error (it names the file's fields).
  name, path = file_task("regtest_no_row_has", '{"review": "a", "lbl": "x"}\n'
                         '{"review": "b", "lbl": "y", "id": 2}\n')
  assert _one_line_error(name).startswith("Task 'regtest_no_row_has': the preprocessor reads "
                                          f"field 'label', which file {path} does not have")


def _glob_task(name, pattern):
  registration.register_file_task(
      name, {"train": pattern}, metric="accuracy", options=["negative", "positive"],
      preprocessor=_review_pre, templates=REVIEW_TEMPLATES, vocabulary=_vocab())


def test_glob_files_with_other_fields(tmp_path):
  (tmp_path / "part1.jsonl").write_text(ROWS)
  (tmp_path / "part2.jsonl").write_text(json.dumps({"review": "x", "lbl": "positive"}) + "\n")
  (tmp_path / "extra1.csv").write_text("review,label\ngood,positive\n")
  (tmp_path / "extra2.csv").write_text("review,id,label\nbad,7,negative\n")
  _glob_task("regtest_glob_fields", str(tmp_path / "part*.jsonl"))
  _glob_task("regtest_glob_extra", str(tmp_path / "extra*.csv"))
  try:
    msg = _one_line_error("regtest_glob_fields")
    exs = _examples("regtest_glob_extra", split="train")
  finally:
    seqio.TaskRegistry.remove("regtest_glob_fields")
    seqio.TaskRegistry.remove("regtest_glob_extra")
  assert msg == (f"{tmp_path}/part2.jsonl has no field 'label' (it has 'lbl': a typo?), which task "
                 f"'regtest_glob_fields' reads ({tmp_path}/part1.jsonl has it); give every row "
                 "'label', or stop reading it in the preprocessor / templates.")
  assert [x["targets_pretokenized"] for x in exs] == [b"positive", b"negative"]  # id ignored


@pytest.mark.parametrize("ext, text", [
    ("csv", "review,label\r\n\"nice, film\",positive\r\nbad film,negative\r\n"),
    ("tsv", "review\tlabel\nnice film\tpositive\nbad film\tnegative\n"),
    ("jsonl", '{"review": "nice, film", "label": "positive"}\n'
              '{"review": "bad film", "label": "negative"}\n'),
])
def test_utf8_byte_order_mark_is_dropped(file_task, tmp_path, ext, text):
  """Excel's 'CSV UTF-8' starts the file with a BOM: the first field is still 'review'."""
  name, path = file_task(f"regtest_bom_{ext}", "\ufeff" + text, ext=ext)
  assert registration._read_rows(path, ext).fields == ["review", "label"]
  exs = _examples(name, split="train")
  assert [x["targets_pretokenized"] for x in exs] == [b"positive", b"negative"]


def test_not_utf8_is_one_error(tmp_path):
  p = tmp_path / "latin1.csv"
  p.write_bytes("review,label\ngood,positive\ncaf\u00e9,negative\n".encode("latin-1"))
  with pytest.raises(FlanjaxError, match=f"^{p}:3: byte 0xe9 is not UTF-8; save the file as "
                                         "UTF-8 text"):
    registration._read_rows(str(p), "csv")


def test_well_formed_csv_rows(tmp_path):
  p = tmp_path / "ok.csv"
  p.write_text('review,label\n"nice, really",positive\n\nbad,negative\n')
  got = registration._read_rows(str(p), "csv")
  assert got.fields == ["review", "label"] and got.gaps == {}
  assert got.rows == [{"review": "nice, really", "label": "positive"},
                      {"review": "bad", "label": "negative"}]


def test_capped_split_caps_plain_and_sliced_splits():
  """A cap limits a split to its first `cap` examples, also a split that is already a slice
  (ParaCrawl's, Fix Punctuation's and Opinion Abstracts' evaluation splits are the train split's
  last examples); TFDS slices do not clip, so a split no larger than the cap stays as it is."""
  from types import SimpleNamespace

  from flanjax.registration import capped_split
  infos = {"train": SimpleNamespace(num_examples=5000)}
  assert capped_split("train", 100, infos) == "train[:100]"
  assert capped_split("train", 6000, infos) == "train"
  assert capped_split("train[-1000:]", 100, infos) == "train[4000:4100]"
  assert capped_split("train[-1000:]", 1000, infos) == "train[-1000:]"
  assert capped_split("train[:-500]", 300, infos) == "train[0:300]"
  assert capped_split("train[10%:20%]", 50, infos) == "train[500:550]"
  # Several splits: read whole (a cap on the last part alone would not cap the whole).
  infos["validation"] = SimpleNamespace(num_examples=300)
  assert capped_split("train+validation", 1000, infos) == "train+validation"
  assert capped_split("train[:10]+validation", 100, infos) == "train[:10]+validation"


def test_a_sliced_evaluation_split_is_capped_on_real_tfds_data():
  """Through a real TFDS source (the offline collection's local builder): an evaluation split
  that is a slice of train, as FLAN's for ParaCrawl, is capped at max_eval_examples."""
  from flanjax.tasks import offline as offline_tasks

  from flanjax import offline
  offline_tasks.register_all()
  family = offline.FAMILIES[0]
  name = "regtest_sliced_eval_cap"
  registration.register_tfds_task(
      name, f"flanjax_offline/{family}:{offline.VERSION}", cluster="misc",
      templates=offline_tasks.TEMPLATES[family], preprocessor=offline_tasks._fields(family),
      splits={"train": "train[:-40]", "validation": "train[-40:]"},
      metric=offline_tasks.METRICS[family], vocabulary=_vocab(), max_eval_examples=7,
      data_dir_fn=offline.data_dir, prepare_fn=offline_tasks._prepare(family))
  try:
    ds = seqio.get_mixture_or_task(name).get_dataset(
        LENGTHS, split="validation", shuffle=False, use_cached=False, num_epochs=1)
    got = [x["inputs_pretokenized"] for x in ds.as_numpy_iterator()]
    assert len(got) == 7
  finally:
    seqio.TaskRegistry.remove(name)


def test_file_values_reach_the_preprocessor_as_json_text_and_lists(tmp_path):
  """JSON values other than text arrive as their JSON text (true, not Python's True; an object
  as JSON), null as "", and a list as a tf.string [n] field (an empty list as [], not [""])."""
  p = tmp_path / "rows.jsonl"
  p.write_text('{"flag": true, "meta": {"src": "x"}, "n": null, "refs": ["a", "b"]}\n'
               '{"flag": false, "meta": {"src": "y"}, "n": 5, "refs": []}\n')
  source = registration._make_file_source("regtest_values", {"validation": str(p)}, "jsonl")
  rows = list(source.get_dataset("validation", shuffle=False).as_numpy_iterator())
  assert [(r["flag"], r["meta"], r["n"]) for r in rows] == [
      (b"true", b'{"src": "x"}', b""), (b"false", b'{"src": "y"}', b"5")]
  assert [r["refs"].tolist() for r in rows] == [[b"a", b"b"], []]


def test_file_task_evaluation_splits_take_a_cap(tmp_path):
  """max_eval_examples caps every split but train (it had been passed on to seqio.Task, a
  TypeError); max_train_examples the train split."""
  rows = "".join(json.dumps({"q": f"q{i}", "a": f"a{i}"}) + "\n" for i in range(6))
  for split in ("train", "validation"):
    (tmp_path / f"{split}.jsonl").write_text(rows)
  registration.register_file_task(
      "regtest_eval_cap", {s: str(tmp_path / f"{s}.jsonl") for s in ("train", "validation")},
      metric="accuracy", vocabulary=_vocab(), templates=[Template("{q}", "{a}")],
      max_train_examples=4, max_eval_examples=2)
  task = seqio.get_mixture_or_task("regtest_eval_cap")
  sizes = {s: len(list(task.get_dataset(LENGTHS, split=s, shuffle=False, use_cached=False,
                                        num_epochs=1).as_numpy_iterator()))
           for s in ("train", "validation")}
  assert sizes == {"train": 4, "validation": 2}
  with pytest.raises(FlanjaxError, match=r"max_eval_examples=0 must be an integer >= 1"):
    registration.register_file_task("regtest_eval_cap0", {"validation": "x.jsonl"},
                                    metric="accuracy", templates=[Template("{q}", "{a}")],
                                    max_eval_examples=0)
  for cap in ({"max_train_examples": 0}, {"max_eval_examples": 1.5}):  # TFDS tasks alike
    with pytest.raises(FlanjaxError, match=rf"^Task 'regtest_tfds_cap0': {next(iter(cap))}="):
      registration.register_tfds_task("regtest_tfds_cap0", "glue/rte", cluster="nli",
                                      metric="accuracy", templates=[Template("{q}", "{a}")],
                                      preprocessor=None, splits={"train": "train"}, **cap)


def test_few_shot_draws_a_duplicated_train_row_once(tmp_path):
  """A train file with a row twice: a prompt holds that exemplar once (it had shown it twice)."""
  rows = [{"q": f"item {i}", "a": f"ans{i}"} for i in range(6)] + [{"q": "item 0", "a": "ans0"}]
  for split in ("train", "validation"):
    (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  registration.register_file_task(
      "regtest_fewshot_dup", {s: str(tmp_path / f"{s}.jsonl") for s in ("train", "validation")},
      metric="squad", vocabulary=_vocab(), templates=[Template("Q: {q}", "{a}")])
  name = registration.task_variant("regtest_fewshot_dup", num_shots=3)
  for ex in seqio.get_mixture_or_task(name).get_dataset(
      {"inputs": 512, "targets": 16}, split="validation", shuffle=False, use_cached=False,
      num_epochs=1).as_numpy_iterator():
    shown = [line for line in ex["inputs_pretokenized"].decode().split("\n") if line[:2] == "Q:"]
    assert len(shown) == 4 and len(set(shown)) == 4, shown  # 3 distinct exemplars + the question


def test_a_file_tasks_answer_must_be_one_of_its_options(tmp_path):
  """An answer that is no option ("Negative" for "negative") was taken silently: the model
  trained on a non-option and every scoring row was wrong. One line names the row."""
  from flanjax import pipeline
  p = tmp_path / "train.jsonl"
  p.write_text('{"review": "good", "label": "positive"}\n{"review": "bad", "label": "Negative"}\n')
  registration.register_file_task(
      "regtest_answer_option", {"train": str(p)}, metric="accuracy", vocabulary=_vocab(),
      options=["negative", "positive"], templates=REVIEW_TEMPLATES,
      preprocessor=lambda ex: {"review": ex["review"], "answer": ex["label"]})
  task = seqio.get_mixture_or_task("regtest_answer_option")
  with pytest.raises(FlanjaxError, match=(
      rf"^Task regtest_answer_option \(files {p}\): row 1 \(from 0\) has the answer Negative "
      r"which is none of its options: negative positive - make each answer the text of one "
      r"option, in the same case and spelling\.$")):
    with pipeline.reading_examples("Task 'regtest_answer_option'"):
      list(task.get_dataset(LENGTHS, split="train", shuffle=False, use_cached=False,
                            num_epochs=1).as_numpy_iterator())


def test_each_epoch_draws_its_templates_anew(tmp_path):
  """A train example met again in a later epoch is rendered with a newly drawn template (it had
  the same one every epoch, so a small dataset saw ~1/N of its example-template pairs); the
  first epoch, and evaluation splits, draw as before."""
  rows = "".join(json.dumps({"q": f"item {i}", "a": f"ans{i}"}) + "\n" for i in range(6))
  (tmp_path / "train.jsonl").write_text(rows)
  registration.register_file_task(
      "regtest_epochs", {"train": str(tmp_path / "train.jsonl")}, metric="squad",
      vocabulary=_vocab(), templates=[Template(f"T{k} {{q}}", "{a}") for k in range(10)])
  task = seqio.get_mixture_or_task("regtest_epochs")

  def drawn(num_epochs):
    seen = collections.defaultdict(list)
    for ex in task.get_dataset(LENGTHS, split="train", shuffle=False, use_cached=False,
                               num_epochs=num_epochs).as_numpy_iterator():
      seen[ex["targets_pretokenized"]].append(ex["inputs_pretokenized"].split()[0])
    return seen

  five, one = drawn(5), drawn(1)
  assert all(len(set(t)) > 1 for t in five.values()), dict(five)
  assert {a: t[:1] for a, t in five.items()} == dict(one)  # the first epoch's draws
