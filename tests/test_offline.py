"""The offline collection: generators, the local TFDS builder, tasks, vocabulary, mixtures."""
import collections
import os

import pytest

from flanjax import offline, vocab


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("tfds"))
  old = os.environ.get("FLANJAX_DATA_DIR")
  os.environ["FLANJAX_DATA_DIR"] = d
  yield d
  if old is None:
    os.environ.pop("FLANJAX_DATA_DIR", None)
  else:
    os.environ["FLANJAX_DATA_DIR"] = old


def test_generators_deterministic_balanced_and_disjoint():
  assert len(set(offline.CLUSTERS.values())) >= 4
  for family in offline.FAMILIES:
    train = offline.generate(family, "train")
    assert train == offline.generate(family, "train")
    assert len(train) == offline.SPLIT_SIZES["train"]
    assert all(set(ex) == set(offline.FIELDS[family]) for ex in train)
    if family in offline.OPTIONS:
      counts = collections.Counter(ex["answer"] for ex in train)
      assert set(counts) == set(offline.OPTIONS[family])
      assert min(counts.values()) > 0.5 * len(train) / len(counts)  # roughly balanced
      assert all(ex["answer"] in ex["options"] for ex in train)
    # No evaluation input is a training input, nor a validation input a test one, and each
    # evaluation input comes once.
    keys = {split: [offline._key(family, ex) for ex in offline.generate(family, split)]
            for split in offline.SPLIT_SIZES}
    assert not set(keys["train"]) & set(keys["validation"]), family
    assert not set(keys["train"]) & set(keys["test"]), family
    assert not set(keys["validation"]) & set(keys["test"]), family
    assert len(set(keys["validation"])) == len(set(keys["test"])) == 200, family
  with pytest.raises(ValueError, match="Unknown offline family 'sentimnt'.*sentiment"):
    offline.generate("sentimnt", "train")


def test_arithmetic_and_nli_labels_are_correct():
  for ex in offline.generate("arithmetic", "validation"):
    a, b = int(ex["a"]), int(ex["b"])
    assert int(ex["answer"]) == (a + b if ex["op"] == "plus" else a - b)
  for ex in offline.generate("nli", "validation")[:50]:
    if ex["answer"] == "no" and " not " in ex["hypothesis"]:
      assert " not " not in ex["premise"]


def test_templates_per_task():
  from flanjax.tasks import offline as offline_tasks
  for family in offline.FAMILIES:
    temps = offline_tasks.TEMPLATES[family]
    assert sum(not t.inverted for t in temps) >= 10, family
    assert sum(t.inverted for t in temps) <= 3
    if family in offline.OPTIONS:
      assert all(t.uses_options for t in temps if not t.inverted), family


def test_vocabulary_t5_conventions():
  v = vocab.offline_vocabulary()
  assert v.vocab_size == 896 and v.extra_ids == 100
  assert v.pad_id == 0 and v.eos_id == 1 and v.unk_id == 2
  text = "Premise: Mona's cat is jumping.\n\nOPTIONS:\n- yes\n- no"
  ids = v.encode(text)
  assert v.decode(ids) == text  # newlines survive
  assert max(ids) < 796 and len(ids) < len(text) / 1.5


def test_vocabulary_loads_quietly_with_identical_tokenization(tmp_path, capfd):
  """The shipped model has a non-empty identity charsmap: tensorflow_text's SentencePiece op
  does not log "precompiled_charsmap is empty" on every load, and tokenization is unchanged."""
  import seqio
  import tensorflow as tf
  from sentencepiece import sentencepiece_model_pb2 as pb
  with open(vocab.OFFLINE_SPM_PATH, "rb") as f:
    model = pb.ModelProto.FromString(f.read())
  assert model.normalizer_spec.name == "identity" and model.normalizer_spec.precompiled_charsmap
  model.normalizer_spec.precompiled_charsmap = b""  # the model as first trained
  empty = str(tmp_path / "empty_charsmap.model")
  with open(empty, "wb") as f:
    f.write(model.SerializeToString())
  text = ["Premise: Mona's cat\tis  jumping.\n- yes", "caf\u00e9 \uff21\u2460\ufb01 \u00a0x",
          "\ue000\ue001 \U0001F600 x\u0301", ""]
  capfd.readouterr()
  quiet = seqio.SentencePieceVocabulary(vocab.OFFLINE_SPM_PATH, extra_ids=100)
  got = quiet.encode_tf(tf.constant(text)).to_list()
  assert "precompiled_charsmap is empty" not in capfd.readouterr().err
  noisy = seqio.SentencePieceVocabulary(empty, extra_ids=100)
  want = noisy.encode_tf(tf.constant(text)).to_list()
  assert "precompiled_charsmap is empty" in capfd.readouterr().err  # the log this avoids
  assert got == want and [quiet.encode(t) for t in text] == [noisy.encode(t) for t in text]
  vocab.set_identity_charsmap(empty)  # what train_offline_spm applies to a new model
  with open(empty, "rb") as f, open(vocab.OFFLINE_SPM_PATH, "rb") as g:
    assert f.read() == g.read()


def test_t5_vocabulary_missing_is_explained(monkeypatch, tmp_path):
  monkeypatch.setenv("FLANJAX_T5_VOCAB", str(tmp_path / "missing.model"))
  with pytest.raises(FileNotFoundError, match="FLANJAX_T5_VOCAB"):
    vocab.default_vocabulary(check=True)
  lazy = vocab.default_vocabulary()  # tasks can be registered without the file ...
  with pytest.raises(FileNotFoundError, match="missing.model.*FLANJAX_T5_VOCAB"):
    lazy.encode("hello")  # ... and using it explains what is missing


def test_tfds_builder_prepares_and_tasks_read_it(data_dir):
  import flanjax.tasks  # noqa: F401
  import seqio
  import tensorflow_datasets as tfds
  task = seqio.get_mixture_or_task("offline_topic")
  assert not offline.is_prepared("topic", data_dir)
  ds = task.get_dataset({"inputs": 64, "targets": 8}, split="validation", shuffle=False,
                        use_cached=False, num_epochs=1)
  exs = list(ds.as_numpy_iterator())
  assert offline.is_prepared("topic", data_dir)
  assert len(exs) == offline.SPLIT_SIZES["validation"]
  raw = offline.generate("topic", "validation")
  by_text = {ex["text"]: ex for ex in raw}
  for ex in exs[:20]:
    inputs = ex["inputs_pretokenized"].decode()
    src = [r for t, r in by_text.items() if t in inputs]
    assert len(src) >= 1, inputs
    assert ex["targets_pretokenized"].decode() == src[0]["answer"]
    assert inputs.endswith("\n\nOPTIONS:\n- sports\n- science\n- business\n- world")
    assert list(ex["options"]) == [b"sports", b"science", b"business", b"world"]
    assert ex["answer_index"] == offline.OPTIONS["topic"].index(src[0]["answer"])
    assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1  # EOS
  b = tfds.builder("flanjax_offline/topic", data_dir=data_dir)
  assert b.info.splits["train"].num_examples == offline.SPLIT_SIZES["train"]
  assert task.num_input_examples("train") == offline.SPLIT_SIZES["train"]


def test_offline_mixtures_registered():
  import flanjax.mixtures  # noqa: F401
  import seqio
  from flanjax.mixtures import offline as mixes
  names = seqio.MixtureRegistry.names()
  assert "offline" in names
  for c in mixes.CLUSTERS:
    without = seqio.get_mixture_or_task(f"offline_without_{c}")
    held = seqio.get_mixture_or_task(f"offline_heldout_{c}")
    assert {t.name for t in held.tasks} == set(mixes.tasks_in(c))
    assert not {t.name for t in held.tasks} & {t.name for t in without.tasks}
