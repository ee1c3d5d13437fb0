"""The FLAN 2021 task catalog: datasets, clusters, templates, field mappings, TFDS specs."""
import collections

import numpy as np
import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds
from flanjax.tasks import flan2021
from flanjax.tasks import flan2021_templates as tp

from flanjax import registration, templates

PAPER_COUNTS = {  # FLAN paper, Figure 3
    "nli": 7, "commonsense": 4, "sentiment": 4, "paraphrase": 4, "closed_book_qa": 3,
    "struct_to_text": 4, "translation": 8, "reading_comprehension": 5,
    "reading_comprehension_with_commonsense": 2, "coreference": 3, "misc": 7,
    "summarization": 11,
}
BYTES_PREFIX = "bytes_flan2021_"
# Tasks whose filter rejects every mock example; their field mapping is checked on the raw mock
# data instead.
FILTERED_UNDER_MOCK = {
    "fix_punct": "mock text (letters and spaces) has no punctuation to remove",
    # FLAN's filter keeps only 4-option questions (tested in test_filters_drop_...).
    "arc_easy": "mock choice lists are never 4 long",
    "arc_challenge": "mock choice lists are never 4 long",
}
# Translation dataset task key -> the language paired with English.
TRANSLATION = {"para_crawl_enes": "es", "wmt14_enfr": "fr",
               **{f"wmt16_translate_{x}en": x for x in ("cs", "de", "fi", "ro", "ru", "tr")}}


def test_collection_has_the_papers_62_datasets_in_12_clusters():
  datasets = flan2021.paper_datasets()
  assert {c: len(d) for c, d in datasets.items()} == PAPER_COUNTS
  assert sum(PAPER_COUNTS.values()) == 62
  datasets_tasks = [s for s in flan2021.SPECS if not s.variant_of]
  # ANLI x3, MNLI x2, ARC x2, SQuAD x2, WSC273 x2 (SuperGLUE WSC, WSC273) as in the FLAN code.
  assert len(datasets_tasks) == 68
  # + the 16 evaluation-only translation direction tasks (2 per translation dataset).
  directions = [s for s in flan2021.SPECS if s.variant_of]
  assert len(directions) == 16 and {s.cluster for s in directions} == {"translation"}
  assert len(flan2021.SPECS) == 84 and len({s.name for s in flan2021.SPECS}) == 84
  assert len(flan2021.task_names()) == 84 and len(flan2021.task_names("translation")) == 24
  for spec in flan2021.SPECS:  # registered on import, with the catalog's metadata
    assert spec.name in seqio.TaskRegistry.names()
    info = registration.TASK_INFO[spec.name]
    assert (info.cluster, info.metric) == (spec.cluster, spec.metric)
    assert info.num_train_examples == spec.num_train_examples
    assert dict(info.splits)["validation"] == spec.splits["validation"]
  metrics = {s.key: s.metric for s in flan2021.SPECS}
  assert metrics["xsum"] == metrics["common_gen"] == "rouge"
  assert metrics["wmt16_translate_deen"] == "bleu"
  assert metrics["squad_v1"] == metrics["drop"] == "squad"
  assert metrics["fix_punct"] == "rouge_edit"  # FLAN's edit distance beside ROUGE
  assert metrics["trivia_qa"] == metrics["natural_questions"] == metrics["quac"] == "trivia_qa"
  assert metrics["anli_r1"] == metrics["winogrande"] == "accuracy"
  with pytest.raises(ValueError, match="Closest: sentiment"):
    flan2021.task_names("sentimnet")


def test_templates_count_options_and_inversion():
  for spec in flan2021.SPECS:
    templates = spec.templates()
    direct = [t for t in templates if not t.inverted]
    # A translation direction task has the 5 templates of its direction (checked below).
    least = 5 if spec.variant_of else 10
    assert len(templates) >= least and len(direct) >= least, spec.name
    assert len(templates) - len(direct) <= 3, spec.name
    info = registration.TASK_INFO[spec.name]
    for t in direct:
      # Option tasks show the OPTIONS block in every direct template and target the option text.
      assert t.uses_options == info.has_options, (spec.name, t.inputs)
      if info.has_options:
        assert t.targets == "{answer}", spec.name
    for t in templates:
      if t.inverted:
        assert not t.uses_options, spec.name
    assert len({t.inputs for t in templates}) == len(templates), f"duplicate in {spec.name}"


def test_tfds_names_versions_and_train_sizes():
  for spec in flan2021.SPECS:
    name, version = spec.tfds_name.split(":")
    builder = tfds.builder(spec.tfds_name, data_dir="/tmp/flanjax-no-data")
    assert str(builder.version) == version, spec.tfds_name
    assert spec.manual_download == registration.needs_manual_download(spec.tfds_name), (
        spec.tfds_name)  # WMT: only cs-en and ru-en (hand-downloaded CzEng, Yandex corpus)
    assert spec.train_size == flan2021.TRAIN_SIZES[name] > 0
  sizes = {s.key: s.num_train_examples for s in flan2021.SPECS}
  assert sizes["cb"] == 250 and sizes["copa"] == 400 and sizes["anli_r3"] == 30_000
  assert sizes["opinion_abstracts_idebate"] == 2_259 - 500
  assert sizes["wsc273"] == 0 and sizes["wsc"] == 554  # coreference trains on SuperGLUE WSC
  assert sizes["wmt16_translate_deen_en_to_de"] == sizes["para_crawl_enes_es_to_en"] == 0
  assert sizes["wmt16_translate_deen"] == sizes["para_crawl_enes"] == 30_000


def test_translation_tasks_have_evaluation_only_direction_tasks():
  """Each translation dataset's task keeps both directions' 10 templates (training unchanged);
  its two direction tasks read the same data and evaluation split with one direction's 5."""
  assert tp.translation() == tp.translation_en_to_x() + tp.translation_x_to_en()
  assert len(tp.translation_en_to_x()) == len(tp.translation_x_to_en()) == 5
  assert {t.targets for t in tp.translation_en_to_x()} == {"{sent2}"}  # the other language
  assert {t.targets for t in tp.translation_x_to_en()} == {"{sent1}"}  # English
  variants = {s.key: s.variant_of for s in flan2021.SPECS if s.variant_of}
  expected = {}
  for key, lang in TRANSLATION.items():
    base = _spec(key)
    assert base.templates() == tp.translation() and base.has_train, key
    assert base.paper_dataset.endswith(f" EN/{lang.upper()}"), key
    corpus = base.paper_dataset.rsplit(" ", 1)[0]
    for direction, label, want in (
        (f"en_to_{lang}", f"EN->{lang.upper()}", tp.translation_en_to_x()),
        (f"{lang}_to_en", f"{lang.upper()}->EN", tp.translation_x_to_en())):
      spec = _spec(f"{key}_{direction}")
      expected[spec.key] = key
      assert spec.templates() == want, spec.name
      assert spec.paper_dataset == f"{corpus} {label}", spec.name
      # k-shot exemplars from the dataset's train pairs, in a split no training mixture reads
      assert dict(spec.splits) == {"validation": base.splits["validation"],
                                   registration.EXEMPLAR_SPLIT: base.splits["train"]}, spec.name
      assert not spec.has_train and spec.num_train_examples == 0, spec.name
      assert (spec.tfds_name, spec.cluster, spec.metric, spec.manual_download) == \
          (base.tfds_name, "translation", "bleu", base.manual_download), spec.name
      info = registration.TASK_INFO[spec.name]
      assert dict(info.splits) == dict(spec.splits)
      assert (info.cluster, info.metric, info.num_train_examples) == ("translation", "bleu", 0)
  assert variants == expected
  assert _spec("wmt16_translate_deen_en_to_de").paper_dataset == "WMT-16 EN->DE"
  assert _spec("wmt14_enfr_fr_to_en").paper_dataset == "WMT-14 FR->EN"
  assert flan2021.eval_task_names("translation") == [
      flan2021.PREFIX + f"{key}_{d}" for key, lang in TRANSLATION.items()
      for d in (f"en_to_{lang}", f"{lang}_to_en")]
  assert flan2021.eval_task_names("nli") == flan2021.task_names("nli")


def _run(fn, ex):
  out = fn({k: tf.constant(v) if not isinstance(v, dict) else
            {kk: tf.constant(vv) for kk, vv in v.items()} for k, v in ex.items()})
  return {k: (v.numpy().tolist() if v.shape.rank else v.numpy()) for k, v in out.items()}


def _spec(key):
  return flan2021.SPECS_BY_NAME[flan2021.PREFIX + key]


def test_field_mappings_follow_the_label_conventions():
  """Label orders come from the TFDS feature specs (ClassLabel names), checked by hand."""
  ex = {"premise": "p", "hypothesis": "h", "idx": 0}
  assert _run(_spec("cb").preprocessor, dict(ex, label=1))["answer"] == b"no"  # contradiction
  assert _run(_spec("cb").preprocessor, dict(ex, label=2))["answer"] == \
      b"it is not possible to tell"
  assert _run(_spec("rte").preprocessor, dict(ex, label=1))["answer"] == b"no"
  assert _run(_spec("anli_r1").preprocessor,
              {"context": "c", "hypothesis": "h", "label": 2, "uid": "u"})["premise"] == b"c"
  wnli = _run(_spec("wnli").preprocessor, {"sentence1": "a", "sentence2": "b", "label": 1,
                                           "idx": 0})
  assert (wnli["premise"], wnli["answer"]) == (b"a", b"yes")  # 1 = entailment in glue/wnli
  assert _run(_spec("trec").preprocessor, {"text": "q", "label-coarse": 2,
                                           "label-fine": 0})["answer"] == b"abbreviation"
  s140 = _spec("sentiment140").preprocessor
  base = {"text": "t", "date": "", "query": "", "user": ""}
  assert _run(s140, dict(base, polarity=4))["answer"] == b"positive"
  assert _run(s140, dict(base, polarity=0))["answer"] == b"negative"
  assert _run(s140, dict(base, polarity=2))["answer"] == b""  # neutral: no answer
  assert _run(_spec("story_cloze").preprocessor,
              {"context": "c", "endings": ["a", "b"], "label": 2})["answer"] == b"b"
  assert _run(_spec("stsb").preprocessor, {"sentence1": "a", "sentence2": "b", "label": 3.6,
                                           "idx": 0})["answer"] == b"4"
  out = _run(_spec("bool_q").preprocessor, {"answer": True, "passage": "p", "question": "q",
                                            "title": "t"})
  assert (out["answer"], out["text"]) == (b"yes", b"p")


def test_field_mappings_of_structured_datasets():
  wino = _run(_spec("winogrande").preprocessor,
              {"sentence": "Tom gave Bob a book because _ was kind.", "option1": "Tom",
               "option2": "Bob", "label": 0})
  assert wino["context"] == b"Tom gave Bob a book because"
  assert wino["options"] == [b"Tom was kind.", b"Bob was kind."]
  assert wino["answer"] == b"Tom was kind."
  text = "The trophy doesn't fit in the suitcase because it is too big."
  start = text.index(" it ") + 1
  sg_wsc = _run(_spec("wsc").preprocessor,
                {"text": "Mark told Pete lies about himself. He should have been honest.",
                 "span1_text": "Mark", "span2_text": "He", "span1_index": 0, "span2_index": 6,
                 "idx": 0, "label": 1})
  assert (sg_wsc["noun"], sg_wsc["pronoun"]) == (b"Mark", b"He")
  assert sg_wsc["options"] == [b"no", b"yes"] and sg_wsc["answer"] == b"yes"
  wsc = _run(_spec("wsc273").preprocessor,
             {"text": text, "pronoun_start": start, "pronoun_end": start + 2, "label": 0,
              "pronoun_text": "it", "option1": "the trophy", "option2": "the suitcase",
              "option1_normalized": "the trophy", "option2_normalized": "the suitcase",
              "idx": 0})
  assert wsc["context"] == b"The trophy doesn't fit in the suitcase because"
  assert wsc["answer"] == b"the trophy is too big."
  rec = _run(_spec("record").preprocessor,
             {"passage": "Story about Alice.\n@highlight\nA line", "query": "@placeholder won.",
              "entities": ["Alice", "Bob"], "answers": ["Alice"],
              "idx": {"passage": 0, "query": 0}})
  assert rec["passage"] == b"Story about Alice." and rec["query"] == b""
  assert rec["options"] == [b"Alice won.", b"Bob won."] and rec["answer"] == b"Alice won."
  assert rec["references"] == [b"Alice won.", b"Alice won."]
  sq2 = _spec("squad_v2").preprocessor
  base = {"context": "c", "id": "i", "question": "q", "title": "New_York",
          "plausible_answers": {"answer_start": np.zeros([0], np.int32),
                                "text": np.zeros([0], np.str_)}}
  out = _run(sq2, dict(base, is_impossible=True,
                       answers={"answer_start": np.zeros([0], np.int32),
                                "text": np.zeros([0], np.str_)}))
  assert (out["answer"], out["title"]) == (b"unanswerable", b"New York")
  assert out["references"] == [b"unanswerable"]
  out = _run(sq2, dict(base, is_impossible=False,
                       answers={"answer_start": [0, 3], "text": ["x", "y"]}))
  assert out["answer"] == b"x" and out["references"] == [b"x", b"x", b"y"]
  drop = _run(_spec("drop").preprocessor, {"passage": "p", "question": "q", "query_id": "",
                                           "answer": "4", "validated_answers": ["four", "4"]})
  assert drop["references"] == [b"4", b"four", b"4"]
  arc = _run(_spec("arc_easy").preprocessor,
             {"answerKey": 1, "question": "q", "id": "i",
              "choices": {"label": [0, 1, 2], "text": ["a", "b", "c"]}})
  assert arc["options"] == [b"a", b"b", b"c"] and arc["answer"] == b"b"
  coqa = _run(_spec("coqa").preprocessor,
              {"story": "s", "source": "x", "questions": ["q1", "q2"],
               "answers": {"answer_start": [0, 0], "answer_end": [1, 1],
                           "input_text": ["a1", "a2"]}})
  assert coqa["numbered_questions"] == b"1. q1\n2. q2"
  assert coqa["numbered_answers"] == b"1. a1\n2. a2"
  e2e = _run(_spec("e2e_nlg").preprocessor,
             {"meaning_representation": "name[The Eagle], food[French]", "target": "t",
              "gem_id": "", "gem_parent_id": "", "references": ["t"]})
  assert e2e["meaning_representation"] == b"name = The Eagle, food = French"
  assert e2e["references"] == [b"t", b"t"]
  math = _run(_spec("math_dataset").preprocessor,
              {"question": "b'Solve 2*x = 4 for x.\\n'", "answer": "b'2\\n'"})
  assert (math["question"], math["answer"]) == (b"Solve 2*x = 4 for x.", b"2")
  punct = _run(_spec("fix_punct").preprocessor, {"en": "Hello, world!", "da": "x"})
  assert (punct["no_punct"], punct["answer"]) == (b"Hello world", b"Hello, world!")
  cnn = _run(_spec("cnn_dailymail").preprocessor,
             {"article": "LONDON, England (CNN) -- The news.", "highlights": "h", "id": "",
              "publisher": ""})
  assert cnn["text"] == b"The news."


def test_filters_drop_unlabelled_examples():
  snli = _spec("snli").filter_fn
  assert bool(snli({"label": tf.constant(2, tf.int64)}))
  assert not bool(snli({"label": tf.constant(-1, tf.int64)}))
  s140 = _spec("sentiment140").filter_fn
  assert not bool(s140({"polarity": tf.constant(2)})) and bool(s140({"polarity": tf.constant(4)}))
  hs = _spec("hellaswag").filter_fn
  assert bool(hs({"label": tf.constant(3), "endings": tf.constant(["a", "b", "c", "d"])}))
  assert not bool(hs({"label": tf.constant(-1), "endings": tf.constant(["a", "b", "c", "d"])}))
  arc = _spec("arc_easy").filter_fn  # FLAN's _filter_arc: 4-option questions only

  def arc_ex(n, key=1):
    return {"answerKey": tf.constant(key), "choices": {"text": tf.constant(["x"] * n)}}

  assert bool(arc(arc_ex(4))) and bool(arc(arc_ex(4, key=3)))
  assert not any(bool(arc(arc_ex(n))) for n in (3, 5)) and not bool(arc(arc_ex(4, key=4)))


@pytest.fixture(scope="module")
def byte_tasks():
  """The whole catalog registered again with seqio.ByteVocabulary (fast, no T5 vocab)."""
  return flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(), prefix=BYTES_PREFIX,
                                    max_eval_examples=10)


def test_every_task_yields_tokenized_examples_under_mock_data(byte_tasks):
  """mock_data generates examples from each builder's real feature spec, so a wrong field name
  or type in a preprocessor or template fails here. (mock_data accepts any split name, so split
  names were checked by hand against the builders' _split_generators.)"""
  assert len(byte_tasks) == len(flan2021.SPECS)
  lengths = {"inputs": 256, "targets": 64}
  answered = collections.Counter()
  with_refs = set()
  with tfds.testing.mock_data(num_examples=5, max_value=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    for spec, name in zip(flan2021.SPECS, byte_tasks):
      split = "train" if spec.has_train else "validation"
      task = seqio.get_mixture_or_task(name)
      assert set(task.splits) == set(spec.splits)
      ds = task.get_dataset(lengths, split=split, shuffle=False, try_in_mem_cache=False,
                            use_cached=False)
      examples = list(ds.as_numpy_iterator())
      if spec.key in FILTERED_UNDER_MOCK:
        assert not examples, f"{name}: {FILTERED_UNDER_MOCK[spec.key]}, yet examples passed"
        raw = tfds.load(spec.tfds_name, split=spec.splits[split])
        fields = next(iter(raw.map(spec.preprocessor).take(1).as_numpy_iterator()))
        assert all(f in fields for t in spec.templates() for f in t.fields()), name
        continue
      assert examples, f"{name}: no examples"
      for ex in examples:
        assert ex["inputs"].dtype == np.int32 and ex["inputs"].size > 0, name
        assert ex["targets"][-1] == 1 or ex["targets"].size == lengths["targets"], name
        assert ex["inputs_pretokenized"], name
        target = task.postprocess_fn(ex["targets_pretokenized"].decode(), example=ex,
                                     is_target=True)
        if ex["references"].size:  # every gold answer / reference (none for inverted templates)
          assert target == [r.decode() for r in ex["references"]], name
          assert ex["targets_pretokenized"].decode() in target, name
          with_refs.add(spec.key)
        else:
          assert target == ex["targets_pretokenized"].decode(), name
        if registration.TASK_INFO[name].has_options:
          assert ex["options"].size >= 2, name
          answered[name] += int(ex["answer_index"] >= 0)
  option_tasks = [n for s, n in zip(flan2021.SPECS, byte_tasks)
                  if registration.TASK_INFO[n].has_options and s.key not in FILTERED_UNDER_MOCK]
  # Random ReCoRD answers are never among the random entities; real answers always are.
  unanswered = [n for n in option_tasks if not answered[n] and not n.endswith("record")]
  assert not unanswered, unanswered
  assert {"squad_v1", "squad_v2", "drop", "trivia_qa", "natural_questions", "quac", "record",
          "common_gen", "dart", "e2e_nlg", "web_nlg_en"} <= with_refs, with_refs


def test_translation_direction_tasks_render_only_their_direction(byte_tasks):
  """Under mock data: a direction task's evaluation examples are its direction's templates over
  the dataset's evaluation pairs (targets in the target language only); the dataset's own task
  still mixes both directions on that split."""
  lengths = {"inputs": 512, "targets": 256}

  def rendered(name):
    ds = seqio.get_mixture_or_task(name).get_dataset(
        lengths, split="validation", shuffle=False, try_in_mem_cache=False, use_cached=False)
    return [(ex["inputs_pretokenized"].decode(), ex["targets_pretokenized"].decode())
            for ex in ds.as_numpy_iterator()]

  directions_seen = set()
  with tfds.testing.mock_data(num_examples=5, max_value=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    for key, lang in TRANSLATION.items():
      base = _spec(key)
      raw = tfds.load(base.tfds_name, split=base.splits["validation"])
      fields = [{"lang1": "English", "lang2": flan2021._LANGS[lang], "sent1": ex["en"],
                 "sent2": ex[lang]} for ex in raw.as_numpy_iterator()]
      assert fields and all(f["sent1"] != f["sent2"] for f in fields), key

      def render_all(tmpls, fields=fields):
        return {templates.render(t, f) for t in tmpls for f in fields}
      en_x, x_en = render_all(tp.translation_en_to_x()), render_all(tp.translation_x_to_en())
      for direction, own, other, target in (
          (f"en_to_{lang}", en_x, x_en, "sent2"), (f"{lang}_to_en", x_en, en_x, "sent1")):
        got = rendered(BYTES_PREFIX + f"{key}_{direction}")
        assert len(got) == len(fields), direction
        assert set(got) <= own and not set(got) & other, (direction, got)
        assert {t for _, t in got} == {f[target].decode() for f in fields}, direction
      got = rendered(BYTES_PREFIX + key)  # the dataset's task: either direction per example
      assert len(got) == len(fields) and set(got) <= en_x | x_en, key
      directions_seen |= {("en_x" if pair in en_x else "x_en") for pair in got}
    # k-shot on a direction task: exemplars from the dataset's train pairs, in the direction
    # of the example (its own template).
    key, lang = "wmt16_translate_deen", "de"
    name = registration.task_variant(BYTES_PREFIX + f"{key}_en_to_{lang}", num_shots=2)
    train = tfds.load(_spec(key).tfds_name, split="train")
    train_en = {ex["en"].decode() for ex in train.as_numpy_iterator()}
    for inputs, _ in rendered(name):
      blocks = inputs.split("\n\n")
      assert any(en in inputs for en in train_en), inputs  # an exemplar from train
      assert not any(b.startswith(("Translate to English", "Here is a sentence in"))
                     for b in blocks), inputs  # no X->English template
  assert directions_seen == {"en_x", "x_en"}


def test_eval_targets_carry_every_gold_answer_for_the_metric():
  """A prediction matching any gold answer (not only the first) scores full marks."""
  from flanjax import metrics, preprocessors
  ex = {"targets_pretokenized": b"Denver Broncos",
        "references": np.array([b"Denver Broncos", b"Broncos", b"the Broncos"], object)}
  target = preprocessors.references_postprocess("Denver Broncos", example=ex, is_target=True)
  assert target == ["Denver Broncos", "Broncos", "the Broncos"]
  assert metrics.squad([target], ["Broncos"]) == {"f1": 100.0, "em": 100.0}
  assert metrics.squad(["Denver Broncos"], ["Broncos"])["em"] == 0.0
  assert metrics.rouge([target], ["the Broncos"])["rougeLsum"] == 100.0
  empty = dict(ex, references=np.zeros([0], object))
  assert preprocessors.references_postprocess("x", example=empty, is_target=True) == "x"
  assert preprocessors.references_postprocess("p", example=ex, is_target=False) == "p"


def test_an_unprepared_dataset_names_the_dataset_dir_and_command(tmp_path):
  name, = flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(), prefix="unprepared_",
                                     keys=["cb"], tfds_data_dir=str(tmp_path))
  with pytest.raises(registration.DatasetNotPreparedError) as e:
    seqio.get_mixture_or_task(name).get_dataset({"inputs": 32, "targets": 8}, split="train")
  msg = str(e.value)
  assert "super_glue/cb" in msg and str(tmp_path) in msg and "tfds build super_glue/cb" in msg
  with pytest.raises(KeyError, match="Closest: cb"):
    flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(), keys=["cbb"])


def test_every_unprepared_dataset_of_a_mixture_is_named_at_once(tmp_path):
  """A FLAN mixture reads 60-odd TFDS datasets: training, contamination checks and evaluation
  name every one that is not prepared, with one `tfds build` command for those that need no
  manual download, not the first one alone (a rerun each)."""
  from flanjax import contamination, pipeline
  names = flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(), prefix="unprepared3_",
                                     keys=["cb", "rte", "story_cloze"],
                                     tfds_data_dir=str(tmp_path))
  seqio.MixtureRegistry.add("unprepared3_mix", names, default_rate=1.0)
  try:
    with pytest.raises(registration.DatasetNotPreparedError) as e:
      pipeline.train_dataset("unprepared3_mix", task_feature_lengths={"inputs": 32, "targets": 8},
                             batch_size=2, seed=0)
    msg = str(e.value)
    assert msg.startswith("3 TFDS datasets of mixture 'unprepared3_mix' are not prepared in "
                          f"data_dir '{tmp_path}': super_glue/cb:1.0.2, super_glue/rte:1.0.2, "
                          "story_cloze/2016:1.0.0.")
    assert f"tfds build super_glue/cb super_glue/rte --data_dir={tmp_path}." in msg
    assert "downloaded by hand first" in msg and "story_cloze/2016:1.0.0 (" in msg
    with pytest.raises(registration.DatasetNotPreparedError, match="^3 TFDS datasets"):
      contamination.mixture_inputs("unprepared3_mix", "train")
    # A task alone keeps its own message.
    with pytest.raises(registration.DatasetNotPreparedError, match="^TFDS dataset 'super_glue/cb"):
      pipeline.train_dataset(names[0], task_feature_lengths={"inputs": 32, "targets": 8},
                             batch_size=2, seed=0)
  finally:
    seqio.MixtureRegistry.remove("unprepared3_mix")


def test_catalog_commands_raise_one_line_errors_with_closest_names():
  from flanjax import catalog
  from flanjax.errors import FlanjaxError
  cases = [(catalog.main_preview, ["flan2021_cbb"], "unknown task 'flan2021_cbb'.*flan2021_cb"),
           (catalog.main_mixture, ["flan2021_withou_nli"],
            "unknown mixture 'flan2021_withou_nli'.*flan2021_without_nli"),
           (catalog.main_preview, ["flan2021_cb", "-n", "0"], "-n must be a positive"),
           (catalog.main_preview, ["flan2021_cb", "--split", "dev"],
            "no split 'dev'; splits: train, validation")]
  for fn, argv, pattern in cases:
    with pytest.raises(FlanjaxError, match=pattern) as e:
      fn(argv)
    assert "\n" not in str(e.value)
