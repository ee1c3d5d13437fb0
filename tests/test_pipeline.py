"""train_batches: shapes, packing, determinism, exact resume, sharding; eval_datasets."""
import os

import numpy as np
import pytest

LENGTHS = {"inputs": 64, "targets": 16}
MIX = "pipeline_test_mix"


@pytest.fixture(scope="module", autouse=True)
def data_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("tfds"))
  old = os.environ.get("FLANJAX_DATA_DIR")
  os.environ["FLANJAX_DATA_DIR"] = d
  import flanjax.mixtures  # noqa: F401

  from flanjax import mixing
  mixing.register_mixture(MIX, ["offline_sentiment", "offline_arithmetic"],
                          rate=mixing.examples_rate(3000))
  yield d
  if old is None:
    os.environ.pop("FLANJAX_DATA_DIR", None)
  else:
    os.environ["FLANJAX_DATA_DIR"] = old


def _take(n, **kw):
  from flanjax import pipeline
  args = dict(task_feature_lengths=LENGTHS, batch_size=4, seed=11)
  args.update(kw)
  it = pipeline.train_batches(MIX, **args)
  return [next(it) for _ in range(n)]


def _equal(a, b):
  return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_packed_batches_deterministic_and_resume_exactly():
  stream = _take(7)
  b = stream[0]
  assert set(b) == {"encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
                    "decoder_loss_weights", "encoder_segment_ids", "decoder_segment_ids",
                    "encoder_positions", "decoder_positions"}
  assert b["encoder_input_tokens"].shape == (4, 64) and b["decoder_target_tokens"].shape == (4, 16)
  # Several examples packed into a row (somewhere in the stream: which rows pack depends on
  # the data drawn).
  assert max(s["encoder_segment_ids"].max() for s in stream) >= 2
  # A new pipeline (same seed) started at batch 4 yields exactly batches 4.. of the stream.
  resumed = _take(3, start_batch=4)
  for k in range(3):
    assert _equal(stream[4 + k], resumed[k])
  assert not _equal(stream[0], _take(1, seed=12)[0])


def test_shards_differ_and_unpacked():
  s0 = _take(2, batch_size=4, num_shards=2, shard_index=0)
  s1 = _take(2, batch_size=4, num_shards=2, shard_index=1)
  assert s0[0]["encoder_input_tokens"].shape == (2, 64)
  assert not _equal(s0[0], s1[0])
  unpacked = _take(1, pack=False)[0]
  assert "encoder_segment_ids" not in unpacked


def test_bad_arguments():
  from flanjax import pipeline
  with pytest.raises(KeyError, match="Closest: offline"):
    pipeline.train_batches("ofline", task_feature_lengths=LENGTHS, batch_size=4, seed=0)
  with pytest.raises(ValueError, match="divisible"):
    _take(1, batch_size=3, num_shards=2)
  with pytest.raises(ValueError, match="'targets'"):
    _take(1, task_feature_lengths={"inputs": 8})


def test_eval_datasets_keep_fields_and_variants():
  from flanjax import pipeline
  dss = pipeline.eval_datasets(MIX, "validation", max_examples=3)
  assert set(dss) == {"offline_sentiment", "offline_arithmetic"}
  ex = next(dss["offline_sentiment"].as_numpy_iterator())
  assert {"inputs_pretokenized", "targets_pretokenized", "options", "answer_index"} <= set(ex)
  assert ex["options"].tolist() == [b"negative", b"positive"]
  ex2 = next(dss["offline_arithmetic"].as_numpy_iterator())
  assert ex2["answer_index"] == -1 and ex2["options"].shape == (0,)
  # Deterministic order.
  again = next(pipeline.eval_datasets(MIX, "validation")["offline_sentiment"].as_numpy_iterator())
  assert again["inputs_pretokenized"] == ex["inputs_pretokenized"]
  with pytest.raises(ValueError, match="no split 'dev'"):
    pipeline.eval_datasets("offline_sentiment", "dev")


def test_train_iterator_save_restore(tmp_path):
  from flanjax import pipeline
  args = dict(task_feature_lengths=LENGTHS, batch_size=4, seed=11)
  it = pipeline.train_iterator(MIX, **args)
  for _ in range(2):
    next(it)
  path = it.save(str(tmp_path / "data_state"))
  want = [next(it) for _ in range(2)]
  fresh = pipeline.train_iterator(MIX, **args)
  fresh.restore(path)
  got = [next(fresh) for _ in range(2)]
  assert all(_equal(a, b) for a, b in zip(want, got))
  assert _equal(want[0], _take(3)[2])  # same stream as train_batches


def test_packed_batches_from_flan2021_subset_under_mock_data():
  """mock_data has no split metadata (no shard files): the pipeline shards examples instead."""
  import gc

  import seqio
  import tensorflow_datasets as tfds
  from flanjax.tasks import flan2021

  from flanjax import mixing, pipeline, vocab
  small = vocab.offline_vocabulary()
  names = flan2021.register_flan2021(vocabulary=small, prefix="pipemock_",
                                     keys=["cb", "squad_v1", "xsum"])
  mixing.register_mixture("pipemock_mix", names, rate=mixing.examples_rate(3000))
  args = dict(task_feature_lengths={"inputs": 128, "targets": 32}, seed=3)
  with tfds.testing.mock_data(num_examples=8, max_value=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    it = pipeline.train_batches("pipemock_mix", batch_size=4, **args)
    first = [next(it) for _ in range(2)]
    again = next(pipeline.train_batches("pipemock_mix", batch_size=4, **args))
    shards = [next(pipeline.train_batches("pipemock_mix", batch_size=4, num_shards=2,
                                          shard_index=i, **args)) for i in range(2)]
    del it
    gc.collect()  # a live iterator over mock data's generator would block interpreter exit
  b = first[0]
  assert b["encoder_input_tokens"].shape == (4, 128) and b["decoder_target_tokens"].shape == (4, 32)
  assert b["encoder_segment_ids"].max() >= 2  # packed
  assert 0 < b["encoder_input_tokens"].max() < small.vocab_size
  assert _equal(first[0], again)
  assert not _equal(first[0], first[1])
  assert shards[0]["encoder_input_tokens"].shape == (2, 128)
  assert not _equal(shards[0], shards[1])
  assert isinstance(seqio.get_mixture_or_task("pipemock_mix"), seqio.Mixture)


@pytest.fixture
def int_on_text_task(tmp_path):
  """A user file task whose preprocessor calls Python int() on a text field (a
  tf.strings.to_number inside tf.data that fails on "one"), and a mixture of it."""
  import json

  import seqio
  import tensorflow as tf

  from flanjax import registration
  from flanjax.templates import Template
  data = tmp_path / "words.jsonl"
  data.write_text("".join(json.dumps({"q": w, "a": "x"}) + "\n" for w in ("one", "two")))
  registration.register_file_task(
      "pipe_int_on_text", {"train": str(data)}, cluster="math", metric="accuracy",
      vocabulary=seqio.ByteVocabulary(), templates=[Template("Q: {q}", "{a}")],
      preprocessor=lambda ex: {"q": tf.strings.as_string(int(ex["q"]) + 1), "a": ex["a"]})
  seqio.MixtureRegistry.add("pipe_int_on_text_mix", [("pipe_int_on_text", 1.0)])
  yield "pipe_int_on_text"
  seqio.MixtureRegistry.remove("pipe_int_on_text_mix")
  seqio.TaskRegistry.remove("pipe_int_on_text")
  registration.TASK_INFO.pop("pipe_int_on_text", None)
  getattr(registration, "_BUILDERS", {}).pop("pipe_int_on_text", None)


TF_FAILED = (r"TensorFlow failed reading its examples \(InvalidArgumentError: StringToNumberOp "
             r"could not correctly convert string: (one|two)\)\. A task's preprocessor runs on "
             r"tensors inside tf.data: use tf ops .*, not Python int\(\) / str\(\) / if on a "
             r"field")


def test_a_preprocessor_failing_in_tf_data_is_one_line_naming_the_task(int_on_text_task,
                                                                       monkeypatch):
  import tensorflow as tf

  from flanjax import pipeline
  from flanjax.errors import FlanjaxError
  args = dict(task_feature_lengths={"inputs": 32, "targets": 8}, batch_size=2, seed=0)
  it = pipeline.train_iterator(int_on_text_task, **args)
  with pytest.raises(FlanjaxError, match=rf"^Task 'pipe_int_on_text': {TF_FAILED}.*"
                                         r"FLANJAX_TRACEBACK=1 shows TensorFlow's whole error\.$"
                     ) as e:
    next(it)
  assert "\n" not in str(e.value) and e.value.__cause__ is None
  with pytest.raises(FlanjaxError, match=rf"^Mixture 'pipe_int_on_text_mix': {TF_FAILED} "
                                         r"\(`flanjax preview TASK` on each of its tasks"):
    next(pipeline.train_iterator("pipe_int_on_text_mix", **args))
  monkeypatch.setenv("FLANJAX_TRACEBACK", "1")  # TensorFlow's own error, whole
  with pytest.raises(tf.errors.InvalidArgumentError, match="StringToNumberOp"):
    next(pipeline.train_iterator(int_on_text_task, **args))


def test_training_on_a_task_whose_preprocessor_fails_in_tf_data(int_on_text_task, tmp_path):
  """`flanjax train`'s trainer: the first batch's TensorFlow error is the same one line."""
  from flanjax.config import get_config
  from flanjax.errors import FlanjaxError
  from flanjax.train import train
  with pytest.raises(FlanjaxError, match=rf"^Task 'pipe_int_on_text': {TF_FAILED}") as e:
    train(model_dir=str(tmp_path / "run"), mixture=int_on_text_task,
          model_config=get_config("tiny", vocab_size=264, dtype="float32"),
          task_feature_lengths={"inputs": 32, "targets": 8}, batch_size=2, num_steps=2,
          progress=False, async_checkpointing=False)
  assert "\n" not in str(e.value)


def test_only_errors_a_user_can_fix_in_the_task_are_translated(monkeypatch):
  import tensorflow as tf

  from flanjax import pipeline
  from flanjax.errors import FlanjaxError
  for err in (tf.errors.ResourceExhaustedError(None, None, "out of memory"),
              tf.errors.UnavailableError(None, None, "file system unavailable"),
              KeyError("inputs"), RuntimeError("other")):
    with pytest.raises(type(err)) as e:
      with pipeline.reading_examples("Task 't'"):
        raise err
    assert e.value is err  # passed on unchanged
  with pytest.raises(FlanjaxError, match=r"^Task 't': TensorFlow failed reading its examples "
                                         r"\(NotFoundError: gone.tfrecord\)\. One of its data "
                                         r"files is missing"):
    with pipeline.reading_examples("Task 't'"):
      raise tf.errors.NotFoundError(None, None, "{{function_node f}} gone.tfrecord\n more")
  with pytest.raises(FlanjaxError, match=r"\(UnimplementedError: Cast string to int32 is not "
                                         r"supported\)\. A task's preprocessor"):
    with pipeline.reading_examples("Task 't'"):
      raise tf.errors.UnimplementedError(None, None, "Cast string to int32 is not supported")


def _if_on_text(ex):
  """A preprocessor branching with Python `if` on a text field: AutoGraph makes it a tf.cond on a
  string tensor, which fails while tf.data traces it (building the dataset)."""
  if ex["q"]:
    return {"q": ex["q"], "a": ex["a"]}
  return {"q": ex["a"], "a": ex["a"]}


def _bool_of_text(ex):
  """bool() on a text field: OperatorNotAllowedInGraphError while tf.data traces it."""
  import tensorflow as tf
  return {"q": tf.strings.as_string(bool(ex["q"])), "a": ex["a"]}


def _own_type_error(ex):
  """A preprocessor's own TypeError, nothing to do with tensors."""
  raise TypeError("my preprocessor's own bug")


@pytest.fixture
def file_task(tmp_path):
  """register(name, preprocessor): a user file task over two words, and a mixture NAME_mix of it;
  removed afterwards."""
  import json

  import seqio

  from flanjax import registration
  from flanjax.templates import Template
  data = tmp_path / "words.jsonl"
  data.write_text("".join(json.dumps({"q": w, "a": "x"}) + "\n" for w in ("one", "two")))
  names = []

  def register(name, preprocessor):
    registration.register_file_task(
        name, {"train": str(data)}, cluster="math", metric="accuracy",
        vocabulary=seqio.ByteVocabulary(), templates=[Template("Q: {q}", "{a}")],
        preprocessor=preprocessor)
    seqio.MixtureRegistry.add(f"{name}_mix", [(name, 1.0)])
    names.append(name)
    return name

  yield register
  for name in names:
    seqio.MixtureRegistry.remove(f"{name}_mix")
    seqio.TaskRegistry.remove(name)
    registration.TASK_INFO.pop(name, None)
    getattr(registration, "_BUILDERS", {}).pop(name, None)


IF_ON_TEXT = (r"its preprocessor uses a tensor field as a Python bool or int, or in Python "
              r"control flow \(at \S+test_pipeline\.py:\d+ in _if_on_text: `if ex\[\"q\"\]:`; "
              r"ValueError: condition of if statement expected to be `tf\.bool` scalar, got "
              r"Tensor\(.*dtype=string\)\)\. A task's preprocessor is traced into tf\.data once, "
              r"on tensors: use tf ops \(tf\.cond, tf\.where, .*\) instead of Python if / bool\(\) "
              r"/ int\(\) / for on a field; FLANJAX_TRACEBACK=1 shows TensorFlow's whole error\.$")


def test_a_python_if_on_a_field_is_one_line_naming_the_task(file_task, monkeypatch):
  """Building the training dataset traces the preprocessor: its Python `if` on a tensor is one
  line naming the task (or the mixture and its task) and the line of the preprocessor."""
  from flanjax import pipeline
  from flanjax.errors import FlanjaxError
  name = file_task("pipe_if_on_text", _if_on_text)
  args = dict(task_feature_lengths={"inputs": 32, "targets": 8}, batch_size=2, seed=0)
  with pytest.raises(FlanjaxError, match=rf"^Task 'pipe_if_on_text': {IF_ON_TEXT}") as e:
    pipeline.train_iterator(name, **args)
  assert "\n" not in str(e.value) and e.value.__cause__ is None
  with pytest.raises(FlanjaxError, match=r"^Mixture 'pipe_if_on_text_mix' \(task "
                                         rf"'pipe_if_on_text'\): {IF_ON_TEXT}"):
    pipeline.train_iterator(f"{name}_mix", **args)
  with pytest.raises(FlanjaxError, match=rf"^Task 'pipe_if_on_text': {IF_ON_TEXT}"):
    pipeline.eval_datasets(name, "train")
  monkeypatch.setenv("FLANJAX_TRACEBACK", "1")  # TensorFlow's own error, whole
  with pytest.raises(ValueError, match=r"in user code:(.|\n)*condition of if statement") as e:
    pipeline.train_iterator(name, **args)
  assert not isinstance(e.value, FlanjaxError)


def test_training_on_a_task_whose_preprocessor_uses_a_field_as_a_bool(file_task, tmp_path):
  """`flanjax train`'s trainer: bool() on a field, found building its data stream, is one line."""
  from flanjax.config import get_config
  from flanjax.errors import FlanjaxError
  from flanjax.train import train
  name = file_task("pipe_bool_of_text", _bool_of_text)
  with pytest.raises(FlanjaxError, match=r"^Task 'pipe_bool_of_text': its preprocessor uses a "
                     r"tensor field as a Python bool or int, or in Python control flow \(at "
                     r"\S+test_pipeline\.py:\d+ in _bool_of_text: `return .*bool\(ex\[\"q\"\]\).*`; "
                     r"OperatorNotAllowedInGraphError: Using a symbolic `tf\.Tensor` as a Python "
                     r"`bool` is not allowed\)\. A task's preprocessor is traced") as e:
    train(model_dir=str(tmp_path / "run"), mixture=name,
          model_config=get_config("tiny", vocab_size=264, dtype="float32"),
          task_feature_lengths={"inputs": 32, "targets": 8}, batch_size=2, num_steps=2,
          progress=False, async_checkpointing=False)
  assert "\n" not in str(e.value)


def test_a_preprocessors_own_type_error_passes_unchanged(file_task):
  from flanjax import pipeline
  from flanjax.errors import FlanjaxError
  name = file_task("pipe_own_type_error", _own_type_error)
  with pytest.raises(TypeError, match="my preprocessor's own bug") as e:
    pipeline.train_iterator(name, task_feature_lengths={"inputs": 32, "targets": 8},
                            batch_size=2, seed=0)
  assert not isinstance(e.value, FlanjaxError)


def test_a_python_ternary_on_a_field_fails_making_the_iterator_as_one_line(file_task):
  """`x if ex["q"] else y` is a tf.cond on a string, refused when the iterator is made (the
  graph optimizer): TrainIterator's construction gives the same one line as reading does."""
  from flanjax import pipeline
  from flanjax.errors import FlanjaxError
  name = file_task("pipe_ternary_on_text",
                   lambda ex: {"q": ex["q"] if ex["q"] else ex["a"], "a": ex["a"]})
  with pytest.raises(FlanjaxError, match=r"^Task 'pipe_ternary_on_text': TensorFlow failed "
                                         r"reading its examples \(InvalidArgumentError: "):
    pipeline.train_iterator(name, task_feature_lengths={"inputs": 32, "targets": 8},
                            batch_size=2, seed=0)


def test_only_tensorflows_errors_for_a_tensor_used_as_a_python_value_are_translated():
  """Building a dataset: TensorFlow's / AutoGraph's errors for a tensor used as a Python bool or
  int become one line; every other TypeError / ValueError passes unchanged."""
  import tensorflow as tf

  from flanjax import pipeline
  from flanjax.errors import FlanjaxError
  for err in (TypeError("my own bug"), ValueError("bad value"),
              TypeError("Input 'y' of 'Add' Op has type int32 that does not match type string of "
                        "argument 'x'."),
              TypeError("'SymbolicTensor' object is not callable"),
              ValueError("len requires a non-scalar tensor, got one of shape Tensor(\"Shape:0\")"),
              FlanjaxError("Task 't': the preprocessor reads field 'x', which the data lacks"),
              KeyError("q")):
    with pytest.raises(type(err)) as e:
      with pipeline.reading_examples("Task 't'"):
        raise err
    assert e.value is err  # passed on unchanged
  for err, shown in (
      (tf.errors.OperatorNotAllowedInGraphError(
          "Iterating over a symbolic `tf.Tensor` is not allowed. You can attempt ..."),
       r"OperatorNotAllowedInGraphError: Iterating over a symbolic `tf\.Tensor` is not allowed\)"),
      (ValueError("condition of while loop expected to be `tf.bool` scalar, got Tensor(\"s:0\", "
                  "shape=(), dtype=string); to use as boolean Tensor, use `tf.cast`; ..."),
       r"ValueError: condition of while loop expected to be `tf\.bool` scalar, got "
       r"Tensor\(\"s:0\", shape=\(\), dtype=string\)\)"),
      (TypeError("int() argument must be a string, a bytes-like object or a real number, not "
                 "'SymbolicTensor'"), r"TypeError: int\(\) argument must be .*'SymbolicTensor'\)"),
      (TypeError("list indices must be integers or slices, not SymbolicTensor"),
       r"TypeError: list indices must be integers or slices, not SymbolicTensor\)"),
      (TypeError("'SymbolicTensor' object cannot be interpreted as an integer"),
       r"TypeError: 'SymbolicTensor' object cannot be interpreted as an integer\)")):
    with pytest.raises(FlanjaxError, match=r"^Mixture 'm': its preprocessor uses a tensor field "
                                           r"as a Python bool or int, or in Python control flow "
                                           rf"\(at \S+test_pipeline\.py:\d+ in \S+: `raise err`; "
                                           rf"{shown}\. A task's preprocessor is traced"):
      with pipeline.reading_examples("Mixture 'm'"):
        raise err
