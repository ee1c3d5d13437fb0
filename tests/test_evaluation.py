"""flanjax eval: seqio Evaluator flow, rank classification, reports, errors, the CLI end to end.

Uses a toy seqio task (byte vocabulary, six in-memory examples) and a tiny random T5.
"""
import json
import os

import numpy as np
import pytest

from flanjax import evaluation, reports
from flanjax.errors import FlanjaxError

TOY_TASK = "h5_toy_parity"
TOY_TRAIN_ONLY = "h5_toy_train_only"
EXAMPLES = [{"inputs": f"Is {i} even?", "targets": "yes" if i % 2 == 0 else "no",
             "options": ["yes", "no"], "answer_index": 0 if i % 2 == 0 else 1}
            for i in range(6)]


def register_toy_tasks():
  """Registers TOY_TASK (validation split, accuracy) and TOY_TRAIN_ONLY (train split only)."""
  import seqio
  import tensorflow as tf

  from flanjax import metrics, registration

  def dataset_fn(split, shuffle_files, seed=None):
    del split, shuffle_files, seed
    return tf.data.Dataset.from_tensor_slices({k: [e[k] for e in EXAMPLES] for k in EXAMPLES[0]})

  vocab = seqio.ByteVocabulary()
  feats = {"inputs": seqio.Feature(vocab, add_eos=True),
           "targets": seqio.Feature(vocab, add_eos=True)}
  for name, splits in ((TOY_TASK, ["validation"]), (TOY_TRAIN_ONLY, ["train"])):
    if name in seqio.TaskRegistry.names():
      continue
    seqio.TaskRegistry.add(
        name, source=seqio.FunctionDataSource(dataset_fn, splits=splits),
        preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
        output_features=feats, metric_fns=[metrics.accuracy])
    registration.TASK_INFO[name] = registration.TaskInfo(
        cluster="parity", metric="accuracy", has_options=True, dataset=name, name=name)
  return vocab


def tiny_config(vocab_size: int = 264):
  from flanjax.config import get_config
  return get_config("tiny", vocab_size=vocab_size, dtype="float32")


def save_tiny_checkpoint(path: str, seed: int = 0):
  """A randomly initialised tiny T5 saved as a flanjax checkpoint with the byte vocabulary."""
  import jax

  from flanjax import checkpoints, model
  config = tiny_config()
  params = jax.device_get(model.init_params(config, jax.random.PRNGKey(seed)))
  checkpoints.save_pretrained(path, params, config, {"type": "byte", "extra_ids": 0}, step=0)
  return config, params


_REFERENCE = {}


def reference_log_likelihood(config, params, inputs, targets) -> float:
  """log p(targets | inputs), summed over target tokens, computed directly with model.apply."""
  import jax
  import jax.numpy as jnp

  from flanjax import model
  if config not in _REFERENCE:
    def logp(params, enc, dec_in):
      logits = model.T5(config).apply({"params": params}, enc, dec_in)
      return jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    _REFERENCE[config] = jax.jit(logp)
  tgt = np.asarray([targets], np.int32)
  dec_in = np.zeros_like(tgt)
  dec_in[:, 1:] = tgt[:, :-1]
  logp = np.asarray(_REFERENCE[config](params, np.asarray([inputs], np.int32), dec_in))
  return float(np.take_along_axis(logp, tgt[..., None], axis=-1).sum())


@pytest.fixture(scope="module")
def vocab():
  return register_toy_tasks()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("ckpt") / "tiny")
  config, params = save_tiny_checkpoint(path)
  return path, config, params


class FakeFns(evaluation.ModelFns):
  """Always predicts "yes"; scores a target by minus its length (shorter option "no" wins)."""

  def predict(self, tokens, max_decode_length):
    out = np.zeros((len(tokens), max(max_decode_length, 4)), np.int32)
    out[:, :3] = [ord(c) + 3 for c in "yes"]  # ByteVocabulary: id = byte + 3
    out[:, 3] = 1
    return out[:, :max_decode_length]

  def score(self, batch):
    return -batch["decoder_loss_weights"].sum(-1)


def test_score_batch_from_targets():
  b = evaluation.score_batch_from_targets([[5, 6, 1], [4, 1]], [[7, 8, 1], [9, 1]], 4, 3)
  assert b["encoder_input_tokens"].tolist() == [[5, 6, 1, 0], [4, 1, 0, 0]]
  assert b["decoder_target_tokens"].tolist() == [[7, 8, 1], [9, 1, 0]]
  assert b["decoder_input_tokens"].tolist() == [[0, 7, 8], [0, 9, 1]]  # as seqio shifts
  assert b["decoder_loss_weights"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_bucket_length():
  assert [evaluation.bucket_length(n) for n in (1, 8, 9, 33, 64, 65, 200)] == [
      8, 8, 16, 64, 64, 128, 256]
  assert evaluation._pad_length(np.ones((2, 9), np.int32)).tolist()[0] == [1] * 9 + [0] * 7


def test_evaluate_tasks_fake_model_writes_reports(vocab, tmp_path, monkeypatch):
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)
  res = evaluation.evaluate_tasks(tiny_config(), None, vocab, TOY_TASK, "validation",
                                  str(tmp_path), batch_size=4)
  m = res["tasks"][TOY_TASK]["metrics"]
  assert m["accuracy"] == pytest.approx(50.0)  # "yes" is right for the 3 even numbers
  assert m["rank_accuracy"] == pytest.approx(50.0)  # "no" (shorter) always wins
  assert res["clusters"] == {"parity": {"score": 50.0, "num_tasks": 1, "tasks": [TOY_TASK]}}
  assert res["cluster_scores"] == {"parity": 50.0}
  assert res["metrics"][f"{TOY_TASK}/accuracy"] == 50.0
  rows = reports.read_predictions(str(tmp_path / "predictions.jsonl"))
  assert len(rows) == 6
  assert rows[1] == {"task": TOY_TASK, "input": "Is 1 even?", "target": "no",
                     "prediction": "yes", "score": -3.0, "option_scores": [-4.0, -3.0],
                     "rank_prediction": "no"}
  assert sorted(os.listdir(tmp_path)) == ["cluster_parity.png", "clusters.png", "metrics.json",
                                          "metrics.md", "predictions.jsonl"]
  assert reports.read_metrics(str(tmp_path))["complete"]


def test_rank_options_count_every_gold_answer(vocab):
  """ReCoRD-like examples: every option equal to one of the references (spellings of the answer
  entity) is correct, not only answer_index's; single-answer examples are unchanged."""
  fns = FakeFns(tiny_config(), None, 4)  # the shortest option wins
  def example(options, answer_index, references=()):
    return {"inputs": np.asarray(list(vocab.encode("q")) + [1], np.int32),
            "options": [o.encode() for o in options], "answer_index": answer_index,
            "references": np.asarray([r.encode() for r in references], object),
            "targets_pretokenized": options[answer_index].encode()}
  examples = [example(["Alice Smith won.", "Robert won.", "Smith won."], 0,
                      ["Alice Smith won.", "Smith won."]),
              example(["yes", "no"], 0),  # no references: answer_index alone
              example(["Carol won.", "Dan won.", "C. won."], 0, ["Carol won."])]
  option_scores, answers = evaluation._rank_options(fns, examples, vocab, 16, 1, 0)
  assert answers == [[0, 2], [0], [0]]
  # The shortest option wins: "Smith won." (a gold spelling), "no", "C. won." (not gold).
  assert [int(np.argmax(s)) for s in option_scores] == [2, 1, 2]
  assert evaluation.metrics_lib.rank_options(option_scores, answers)["rank_accuracy"] == (
      pytest.approx(100 / 3))
  # Without answer_index (-1) the options equal to the target or a reference are correct.
  no_index = dict(examples[0], answer_index=-1, references=np.zeros([0], object))
  assert evaluation._rank_options(fns, [no_index], vocab, 16, 1, 0)[1] == [[0]]


@pytest.fixture(scope="module")
def scoring_task(tmp_path_factory):
  """The scoring variant of a file task whose examples have 3, 2 and 2 options."""
  import seqio

  from flanjax import registration
  from flanjax.templates import Template
  name = "h5_toy_options"
  if name not in registration.TASK_INFO:
    rows = [{"q": "Pick b.", "options": ["aa", "b", "cccc"], "answer": "b"},
            {"q": "Pick e.", "options": ["dd", "eeeeee"], "answer": "eeeeee"},
            {"q": "Pick f.", "options": ["f", "gg"], "answer": "f"}]
    p = tmp_path_factory.mktemp("scoring") / "validation.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    registration.register_file_task(name, {"validation": str(p)}, cluster="toy",
                                    metric="accuracy", vocabulary=seqio.ByteVocabulary(),
                                    templates=[Template("{q}{options_}", "{answer}")])
  return registration.task_variant(name, scoring=True)


def test_max_examples_of_a_scoring_task_counts_examples(vocab, scoring_task, monkeypatch):
  """--max_examples keeps whole examples (every option) of a task with a row per option."""
  import seqio
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)  # the shortest option wins
  task = seqio.get_mixture_or_task(scoring_task)
  assert [evaluation.rows_of_examples(task, "validation", n) for n in (1, 2, 3, 9)] == [
      3, 5, 7, 7]
  res = evaluation.evaluate_tasks(tiny_config(), None, None, scoring_task, "validation", None,
                                  max_examples=2, batch_size=4)
  entry = res["tasks"][scoring_task]
  # Example 0 ("b" is the shortest and right) and example 1 ("dd" wins, "eeeeee" is right), with
  # all their options; seqio alone would keep 2 rows, both of example 0 (100 %).
  assert entry["metrics"] == {"rank_accuracy": 50.0}
  assert entry["num_examples"] == 2
  assert evaluation.evaluate_tasks(tiny_config(), None, None, scoring_task, "validation", None,
                                   batch_size=4)["tasks"][scoring_task]["num_examples"] == 3
  # One row per example elsewhere: max_examples rows.
  assert evaluation.rows_of_examples(seqio.get_mixture_or_task(TOY_TASK), "validation", 2) == 2


def test_resolve_tasks_errors(vocab):
  with pytest.raises(evaluation.EvalError, match=r"^No task or mixture named 'h5_toy_parityy'\. "
                                                r"Closest: h5_toy_parity\b"):
    evaluation.resolve_tasks("h5_toy_parityy", "validation")
  with pytest.raises(evaluation.EvalError, match=r"named 'zzqx'\. Register yours with --module"):
    evaluation.resolve_tasks("zzqx", "validation")
  with pytest.raises(evaluation.EvalError, match=r"has no 'validation' split.*\['train'\]"):
    evaluation.resolve_tasks(TOY_TRAIN_ONLY, "validation")


def test_failed_eval_writes_nothing(vocab, tmp_path, monkeypatch):
  class Broken(FakeFns):
    def score(self, batch):
      raise RuntimeError("device lost")
  monkeypatch.setattr(evaluation, "ModelFns", Broken)
  with pytest.raises(RuntimeError, match="device lost"):
    evaluation.evaluate_tasks(tiny_config(), None, vocab, TOY_TASK, "validation", str(tmp_path))
  assert os.listdir(tmp_path) == []


@pytest.fixture
def toy_task_with(vocab):
  """Registers toy validation tasks whose first preprocessor is the given map function; each is
  removed after the test."""
  import seqio
  import tensorflow as tf

  from flanjax import metrics
  names = []

  def add(name, preprocessor):
    seqio.TaskRegistry.add(
        name, source=seqio.FunctionDataSource(
            lambda split, shuffle_files, seed=None: tf.data.Dataset.from_tensor_slices(
                {"inputs": ["one", "two"], "targets": ["1", "2"]}), splits=["validation"]),
        preprocessors=[seqio.map_over_dataset(preprocessor),
                       seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
        output_features={k: seqio.Feature(vocab, add_eos=True) for k in ("inputs", "targets")},
        metric_fns=[metrics.accuracy])
    names.append(name)
    return name

  yield add
  for name in names:
    seqio.TaskRegistry.remove(name)


def _int_of_text(ex):
  """Python int() on a text field: AutoGraph makes it a tf.strings.to_number, which fails on
  "one" while reading; with AutoGraph off it fails while tracing."""
  import tensorflow as tf
  return {**ex, "inputs": tf.strings.as_string(int(ex["inputs"]))}


def test_a_task_whose_preprocessor_fails_in_tf_data_is_one_line(vocab, tmp_path, monkeypatch,
                                                                 toy_task_with):
  """`flanjax eval` (and the trainer's periodic eval): a preprocessor's int() on a text field
  fails inside tf.data; the error is one line naming the task, and nothing is written."""
  name = toy_task_with("h5_toy_int_on_text", _int_of_text)
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)
  with pytest.raises(FlanjaxError, match=rf"^Task '{name}': TensorFlow failed reading its "
                     r"examples \(InvalidArgumentError: StringToNumberOp could not correctly "
                     r"convert string: one\)\. A task's preprocessor runs on tensors inside "
                     r"tf.data") as e:
    evaluation.evaluate_tasks(tiny_config(), None, vocab, name, "validation", str(tmp_path))
  assert "\n" not in str(e.value)
  assert os.listdir(tmp_path) == []


def test_a_preprocessor_using_a_field_as_a_python_int_is_one_line(vocab, tmp_path, monkeypatch,
                                                                  toy_task_with):
  """`flanjax eval`: a preprocessor's tensor used as a Python int fails while the Evaluator
  builds the task's dataset (tracing it); one line naming the task, nothing written;
  FLANJAX_TRACEBACK=1 raises TensorFlow's TypeError."""
  import tensorflow as tf
  name = toy_task_with("h5_toy_python_int",
                       tf.autograph.experimental.do_not_convert(_int_of_text))
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)
  with pytest.raises(FlanjaxError, match=rf"^Task '{name}': its preprocessor uses a tensor "
                     r"field as a Python bool or int, or in Python control flow \(at "
                     r"\S+test_evaluation\.py:\d+ in _int_of_text: `return .*int\(ex.*`; "
                     r"TypeError: int\(\) argument must be .*, not 'SymbolicTensor'\)\. A task's "
                     r"preprocessor is traced into tf\.data once") as e:
    evaluation.evaluate_tasks(tiny_config(), None, vocab, name, "validation", str(tmp_path))
  assert "\n" not in str(e.value)
  assert os.listdir(tmp_path) == []
  monkeypatch.setenv("FLANJAX_TRACEBACK", "1")
  with pytest.raises(TypeError, match="SymbolicTensor") as e:
    evaluation.evaluate_tasks(tiny_config(), None, vocab, name, "validation", str(tmp_path))
  assert not isinstance(e.value, FlanjaxError)


def test_checkpoint_that_does_not_match_the_model(tiny_ckpt):
  _, config, params = tiny_ckpt
  want = r"do not match the model config.*wi_0/kernel: \(64, 128\) != expected \(64, 256\)"
  with pytest.raises(evaluation.EvalError, match=want):
    evaluation.check_params_match(config.replace(d_ff=256), params)
  bad = dict(params)
  del bad["token_embedder"]
  with pytest.raises(evaluation.EvalError, match=r"token_embedder/embedding: missing \(expected"):
    evaluation.check_params_match(config, bad)


def test_rank_classification_matches_direct_likelihoods(vocab, tiny_ckpt):
  """The option with the highest log-likelihood (computed independently) is the prediction."""
  _, config, params = tiny_ckpt
  fns = evaluation.ModelFns(config, params, batch_size=4)
  examples = []
  for e in EXAMPLES[:3]:
    examples.append({"inputs": np.asarray(list(vocab.encode(e["inputs"])) + [1], np.int32),
                     "options": [o.encode() for o in e["options"]],
                     "answer_index": e["answer_index"]})
  option_scores, answers = evaluation._rank_options(fns, examples, vocab, 16, 1, 0)
  assert answers == [[0], [1], [0]]
  for ex, scores in zip(examples, option_scores):
    expected = [reference_log_likelihood(config, params, list(ex["inputs"]),
                                         list(vocab.encode(o.decode())) + [1])
                for o in ex["options"]]
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    assert int(np.argmax(scores)) == int(np.argmax(expected))


def test_eval_cli_end_to_end(vocab, tiny_ckpt, tmp_path, capsys):
  """`flanjax eval` restores the checkpoint (config + vocabulary) and writes every output."""
  path, config, params = tiny_ckpt
  out = tmp_path / "eval"
  rc = evaluation.main(["--checkpoint", path, "--task", TOY_TASK, "--output_dir", str(out),
                        "--batch_size", "4", "--max_decode_length", "6"])
  assert rc == 0
  assert capsys.readouterr().out.endswith(
      f"Wrote metrics.json, metrics.md, predictions.jsonl and the plots to {out}\n")
  m = reports.read_metrics(str(out))
  assert "output_dir" not in m  # where it is, not what it says
  assert m["step"] == 0 and m["checkpoint"] == os.path.abspath(path)
  task = m["tasks"][TOY_TASK]
  assert set(task["metrics"]) == {"accuracy", "rank_accuracy"}
  assert 0.0 <= task["metrics"]["rank_accuracy"] <= 100.0
  rows = reports.read_predictions(str(out / "predictions.jsonl"))
  assert [r["target"] for r in rows] == [e["targets"] for e in EXAMPLES]
  # The per-example score is log p(target | input) of the restored model.
  want = reference_log_likelihood(config, params, list(vocab.encode(EXAMPLES[0]["inputs"])) + [1],
                                  list(vocab.encode(EXAMPLES[0]["targets"])) + [1])
  assert rows[0]["score"] == pytest.approx(want, abs=1e-3)
  # The rank prediction agrees with the option scores, and accuracy with the predictions.
  for r in rows:
    assert r["rank_prediction"] == ["yes", "no"][int(np.argmax(r["option_scores"]))]
  acc = 100 * np.mean([r["prediction"] == r["target"] for r in rows])
  assert task["metrics"]["accuracy"] == pytest.approx(acc)
  assert {"metrics.md", "clusters.png", "cluster_parity.png"} <= set(os.listdir(out))
  assert json.load(open(out / "metrics.json"))["scale"] == "0-100"


def test_eval_cli_errors(vocab, tiny_ckpt, tmp_path):
  path, _, _ = tiny_ckpt
  with pytest.raises(evaluation.EvalError, match="has no 'validation' split"):
    evaluation.main(["--checkpoint", path, "--task", TOY_TRAIN_ONLY])
  from flanjax import checkpoints
  with pytest.raises(checkpoints.CheckpointError, match="not a flanjax checkpoint"):
    evaluation.main(["--checkpoint", str(tmp_path), "--task", TOY_TASK])


def test_checkpoint_config_mismatch_is_one_clear_error(vocab, tiny_ckpt, tmp_path):
  """A flanjax_model.json that does not describe the saved params: one clear message."""
  import shutil
  path, _, _ = tiny_ckpt
  bad = tmp_path / "bad"
  shutil.copytree(path, bad)
  info = json.load(open(bad / "flanjax_model.json"))
  info["model_config"]["d_ff"] = 96
  (bad / "flanjax_model.json").write_text(json.dumps(info))
  from flanjax.errors import FlanjaxError
  with pytest.raises(FlanjaxError, match="do not match the model config.*wi_0.*!= expected"):
    evaluation.main(["--checkpoint", str(bad), "--task", TOY_TASK, "--output_dir",
                     str(tmp_path / "out")])
  assert not (tmp_path / "out").exists()


def test_eval_hf_directory_matches_transformers(vocab, tmp_path):
  """A local HF T5 directory is converted on the fly; scores equal transformers' likelihoods."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(0)
  hf_cfg = transformers.T5Config(
      vocab_size=264, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2,
      num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
      dropout_rate=0.0, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
  hf = transformers.T5ForConditionalGeneration(hf_cfg).eval()
  # transformers 5 ties in memory; give v1.1 its own output layer, as Flan-T5 has.
  hf.lm_head.weight = torch.nn.Parameter(torch.randn(264, 32) * 0.2)
  hf.save_pretrained(tmp_path / "hf")
  out = tmp_path / "eval"
  assert evaluation.main(["--checkpoint", str(tmp_path / "hf"), "--task", TOY_TASK,
                          "--output_dir", str(out), "--batch_size", "8",
                          "--max_decode_length", "4", "--dtype", "float32"]) == 0
  rows = reports.read_predictions(str(out / "predictions.jsonl"))
  for row in rows[:2]:
    enc = torch.tensor([list(vocab.encode(row["input"])) + [1]])
    for option, got in zip(["yes", "no"], row["option_scores"]):
      labels = torch.tensor([list(vocab.encode(option)) + [1]])
      with torch.no_grad():
        loss = hf(input_ids=enc, labels=labels).loss  # mean NLL over label tokens
      assert got == pytest.approx(-float(loss) * labels.shape[1], abs=2e-3)


MESH_CODE = """
import sys
sys.path.insert(0, TESTS_DIR)
import jax
import numpy as np
from test_evaluation import TOY_TASK, register_toy_tasks, tiny_config
from flanjax import evaluation, model

assert jax.device_count() == 2
vocab = register_toy_tasks()
config = tiny_config()
params = jax.device_get(model.init_params(config, jax.random.PRNGKey(0)))
rng = np.random.RandomState(0)
tokens = rng.randint(3, 200, size=(5, 12)).astype(np.int32)
batch = evaluation.score_batch_from_targets(tokens, rng.randint(3, 200, size=(5, 6)), 12, 6)
ref = evaluation.ModelFns(config, params, batch_size=2)
want_scores, want_pred = ref.score(batch), ref.predict(tokens, 5)
want_metrics = evaluation.evaluate_tasks(config, params, vocab, TOY_TASK, batch_size=2,
                                         max_decode_length=4)["metrics"]
for shape in [(2, 1), (1, 2)]:
  mesh, sharded = evaluation.make_mesh_and_shard(config, params, shape)
  kernel = sharded["decoder"]["logits_dense"]["kernel"]
  assert len(kernel.sharding.device_set) == 2
  if shape == (1, 2):  # vocab over `model`: each device holds half the output layer
    assert kernel.addressable_shards[0].data.shape == (64, 132), kernel.sharding
  fns = evaluation.ModelFns(config, sharded, batch_size=2, mesh=mesh)
  np.testing.assert_allclose(fns.score(batch), want_scores, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(fns.predict(tokens, 5), want_pred)
  got = evaluation.evaluate_tasks(config, sharded, vocab, TOY_TASK, batch_size=2,
                                  max_decode_length=4, mesh=mesh)["metrics"]
  assert got == want_metrics, (got, want_metrics)
print("MESH_OK")
"""


@pytest.mark.slow
def test_eval_on_a_mesh_matches_one_device(python_runner, tmp_path):
  """Sharded params (data or model parallel over 2 devices) give the same scores/predictions."""
  # Run outside the repo root: there `import gin` would find the repo's gin/ folder.
  code = MESH_CODE.replace("TESTS_DIR", repr(os.path.dirname(os.path.abspath(__file__))))
  proc = python_runner(code, devices=2, cwd=str(tmp_path))
  assert "MESH_OK" in proc.stdout


def test_few_shot_eval_of_an_offline_task(vocab, tmp_path, monkeypatch):
  """--num_shots k evaluates the registered k-shot variant: k solved exemplars before the input."""
  import flanjax.tasks  # noqa: F401  (offline_* tasks; their data is generated locally)
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)
  res = evaluation.evaluate_tasks(tiny_config(2048), None, None, "offline_sentiment",
                                  "validation", str(tmp_path), num_shots=2, max_examples=3,
                                  batch_size=4)
  assert res["num_shots"] == 2
  assert res["tasks"]["offline_sentiment"]["num_examples"] == 3
  rows = reports.read_predictions(str(tmp_path / "predictions.jsonl"))
  for r in rows:
    assert r["input"].count("OPTIONS:") == 3  # two exemplars + the question
    assert r["input"].rstrip().endswith("- positive")
  with pytest.raises(evaluation.EvalError, match="registered with flanjax.registration"):
    evaluation.evaluate_tasks(tiny_config(), None, None, TOY_TASK, num_shots=1)


def test_few_shot_eval_of_a_variant_keeps_its_format(vocab, tmp_path, monkeypatch):
  """A variant's k-shot evaluation is that variant's format, k-shot (it was the base task's):
  the scoring variant scores options only, template 3 renders every row with template 3."""
  import flanjax.tasks  # noqa: F401

  from flanjax import registration
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)
  scoring = registration.task_variant("offline_sentiment", scoring=True)
  res = evaluation.evaluate_tasks(tiny_config(2048), None, None, scoring, "validation",
                                  str(tmp_path / "s"), num_shots=1, max_examples=2, batch_size=4)
  assert set(res["tasks"][scoring]["metrics"]) == {"rank_accuracy"}
  third = registration.task_variant("offline_sentiment", template=3)
  evaluation.evaluate_tasks(tiny_config(2048), None, None, third, "validation",
                            str(tmp_path / "t"), num_shots=1, max_examples=2, batch_size=4)
  rows = reports.read_predictions(str(tmp_path / "t" / "predictions.jsonl"))
  assert {r["template"] for r in rows} == {3}
  assert all(r["input"].count("OPTIONS:") == 2 for r in rows)  # one exemplar + the question


def test_each_template_evaluated_as_its_own_task(vocab, tmp_path, monkeypatch):
  """templates="each" (FLAN's protocol) evaluates every direct template of a task on all its
  examples: each template's metrics, their mean as the task's, the best template; the rows
  name their template, and every row of a template is rendered with it alone."""
  import flanjax.tasks  # noqa: F401  (offline_* tasks; their data is generated locally)

  from flanjax import registration
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)
  direct = registration.direct_templates("offline_sentiment")
  assert len(direct) == 10  # 12 templates, 2 of them inverted (training only)
  res = evaluation.evaluate_tasks(tiny_config(2048), None, None, "offline_sentiment",
                                  "validation", str(tmp_path), max_examples=4, batch_size=4,
                                  templates="each")
  task = res["tasks"]["offline_sentiment"]
  assert sorted(map(int, task["templates"])) == direct
  for k, v in task["metrics"].items():
    assert v == pytest.approx(np.mean([m[k] for m in task["templates"].values()]))
  best, name, value = task["best_template"]
  assert name == task["primary"][0]
  assert value == max(m[name] for m in task["templates"].values())
  assert res["templates"] == "each" and task["num_examples"] == 4
  rows = reports.read_predictions(str(tmp_path / "predictions.jsonl"))
  assert len(rows) == 4 * len(direct)
  templates = registration.TASK_INFO["offline_sentiment"].templates
  for r in rows:  # each row's input starts as its own template's text does
    head = templates[r["template"]].inputs.split("{")[0]
    assert r["input"].startswith(head), (r["template"], r["input"][:60])
  assert len({r["input"] for r in rows if r["template"] == direct[0]}) == 4
  assert len({r["input"] for r in rows}) == len(rows)  # 10 renderings of each example
  assert "| best |" in (tmp_path / "metrics.md").read_text()
  # "sampled" (the default): each row names the direct template its example was drawn with.
  evaluation.evaluate_tasks(tiny_config(2048), None, None, "offline_sentiment", "validation",
                            str(tmp_path / "sampled"), max_examples=4, batch_size=4)
  sampled = reports.read_predictions(str(tmp_path / "sampled" / "predictions.jsonl"))
  assert len(sampled) == 4 and all(r["template"] in direct for r in sampled)
  for r in sampled:
    assert r["input"] in {x["input"] for x in rows if x["template"] == r["template"]}
  # One format (no templates to vary): evaluated once, as with "sampled".
  one = evaluation.evaluate_tasks(tiny_config(), None, None, TOY_TASK, "validation", None,
                                  templates="each")
  assert "templates" not in one["tasks"][TOY_TASK]
  with pytest.raises(evaluation.EvalError, match="templates='all'"):
    evaluation.evaluate_tasks(tiny_config(), None, None, TOY_TASK, templates="all")
  with pytest.raises(FlanjaxError, match="not one of its direct"):
    registration.task_variant("offline_sentiment", template=11)  # an inverted one


def test_eval_gin_bindings_apply_to_unset_flags_and_step_in_default_dir(vocab, tiny_ckpt, tmp_path):
  """`--gin.evaluate.X=Y` works for flag-backed args unless the flag is given; the default report
  folder names the step, so evaluating another step never overwrites it."""
  import shutil

  from flanjax.gin_config import gin
  path, _, _ = tiny_ckpt
  ckpt = tmp_path / "ckpt"
  shutil.copytree(path, ckpt)
  gin.clear_config()
  try:
    assert evaluation.main(["--checkpoint", str(ckpt), "--task", TOY_TASK,
                            "--max_decode_length", "4", "--gin.evaluate.max_examples=2",
                            "--gin.evaluate.batch_size=2"]) == 0
    m = reports.read_metrics(str(ckpt / "eval_validation_step0"))
    assert m["tasks"][TOY_TASK]["num_examples"] == 2 and m["step"] == 0
    # The settings that change the numbers are recorded beside them.
    assert (m["max_examples"], m["max_decode_length"], m["decode_method"], m["templates"],
            m["num_shots"], m["split"]) == (2, 4, "greedy", "sampled", 0, "validation")
    out = tmp_path / "flag"
    assert evaluation.main(["--checkpoint", str(ckpt), "--task", TOY_TASK, "--output_dir",
                            str(out), "--max_decode_length", "4", "--max_examples", "3",
                            "--gin.evaluate.max_examples=2", "--gin.evaluate.batch_size=2"]) == 0
    assert reports.read_metrics(str(out))["tasks"][TOY_TASK]["num_examples"] == 3
    # --templates each: its own default folder, and the mode in metrics.json.
    assert evaluation.main(["--checkpoint", str(ckpt), "--task", TOY_TASK, "--templates", "each",
                            "--max_decode_length", "4", "--max_examples", "2"]) == 0
    assert reports.read_metrics(str(ckpt / "eval_validation_each_template_step0"))[
        "templates"] == "each"
  finally:
    gin.clear_config()
  with pytest.raises(evaluation.EvalError, match="--mesh_shape='2x1'"):
    evaluation.main(["--checkpoint", str(ckpt), "--task", TOY_TASK, "--mesh_shape", "2x1"])


def test_beam_predictions_do_not_depend_on_eval_padding():
  """`eval --decode_method=beam` pads rows to the batch size and lengths to a bucket: each row's
  beam-search output equals that row decoded alone, unpadded."""
  import jax

  from flanjax import decoding, model
  config = tiny_config()
  params = model.init_params(config, jax.random.PRNGKey(3))
  rng = np.random.default_rng(0)
  tokens = rng.integers(3, 200, size=(5, 7)).astype(np.int32)
  tokens[1, 5:] = 0  # a shorter input
  fns = evaluation.ModelFns(config, params, batch_size=4, decode_method="beam", num_beams=3,
                            alpha=1.5)
  got = fns.predict(tokens, max_decode_length=6)
  assert got.shape == (5, 6)
  for i in range(5):
    row = tokens[i:i + 1, :5] if i == 1 else tokens[i:i + 1]
    want = np.asarray(decoding.predict(config, params, row, max_decode_length=6, method="beam",
                                       num_beams=3, alpha=1.5))
    np.testing.assert_array_equal(got[i:i + 1], want)


def test_eval_beam_flags_reach_decoding_and_are_recorded(vocab, tiny_ckpt, tmp_path,
                                                        decode_settings, capsys):
  """--num_beams and --alpha set beam search's width and length penalty, recorded in
  metrics.json beside decode_method; without beam search, or out of range, one-line errors."""
  from flanjax.gin_config import gin
  path, _, _ = tiny_ckpt
  seen = decode_settings
  out = tmp_path / "eval"
  base = ["--checkpoint", path, "--task", TOY_TASK, "--max_decode_length", "3",
          "--max_examples", "2"]
  assert evaluation.main(base + ["--output_dir", str(out), "--decode_method", "beam",
                                 "--num_beams", "2", "--alpha", "0"]) == 0
  assert set(seen) == {("beam", 2, 0.0)}
  m = reports.read_metrics(str(out))
  assert (m["decode_method"], m["num_beams"], m["alpha"]) == ("beam", 2, 0.0)
  with pytest.raises(evaluation.EvalError, match=(
      r"^--num_beams and --alpha set beam search, but --decode_method is 'greedy': add "
      r"--decode_method beam, or drop them\.$")):
    evaluation.main(base + ["--num_beams", "2", "--alpha", "1"])
  gin.clear_config()
  try:
    with pytest.raises(evaluation.EvalError, match=(
        r"^--alpha=-1.0 \(evaluate.alpha\): beam search's length penalty must be a number >= 0 "
        r"\(0: none; T5's default 0.6\)\.$")):
      evaluation.main(base + ["--decode_method", "beam", "--gin.evaluate.alpha=-1.0"])
    gin.clear_config()
    with pytest.raises(evaluation.EvalError, match=(
        r"^--gin.evaluate.num_beams set beam search, but --decode_method is 'greedy': add "
        r"--decode_method beam, or drop them\.$")):
      evaluation.main(base + ["--gin.evaluate.num_beams=2"])
  finally:
    gin.clear_config()
  for flag, value in (("--alpha", "-0.5"), ("--alpha", "nan"), ("--num_beams", "0")):
    with pytest.raises(SystemExit):
      evaluation.main(base + ["--decode_method", "beam", flag, value])
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(
        f"flanjax eval: error: argument {flag}: must be a")
  with pytest.raises(evaluation.EvalError, match=r"^--num_beams=0 \(evaluate.num_beams\): must "
                                                 r"be an integer >= 1\.$"):
    evaluation.ModelFns(tiny_config(), None, 4, decode_method="beam", num_beams=0)


def _no_load(*args, **kwargs):
  raise AssertionError("the checkpoint was loaded before the output folder was checked")


def test_eval_refuses_earlier_results_unless_overwrite(vocab, tiny_ckpt, tmp_path, monkeypatch):
  """An earlier evaluation in --output_dir is kept unless --overwrite (refused before the model
  loads); files flanjax did not write there are never touched."""
  path, _, _ = tiny_ckpt
  out = tmp_path / "eval"
  argv = ["--checkpoint", path, "--task", TOY_TASK, "--output_dir", str(out), "--batch_size", "4",
          "--max_decode_length", "2", "--max_examples", "2"]
  assert evaluation.main(argv) == 0
  (out / "cluster_myplot.png").write_bytes(b"my own chart")
  first = (out / "metrics.json").read_text()
  with monkeypatch.context() as m:
    m.setattr(evaluation, "load_checkpoint", _no_load)
    with pytest.raises(evaluation.EvalError, match=(
        r"--output_dir .*eval already holds the results of an earlier evaluation \("
        r"cluster_parity.png, clusters.png, metrics.json, metrics.md, predictions.jsonl\); "
        r"pass --overwrite")):
      evaluation.main(argv)
  assert (out / "metrics.json").read_text() == first
  assert evaluation.main(argv[:-1] + ["3", "--overwrite"]) == 0
  assert reports.read_metrics(str(out))["tasks"][TOY_TASK]["num_examples"] == 3
  assert (out / "cluster_myplot.png").read_bytes() == b"my own chart"
  # A user's own chart that this evaluation would write counts as an earlier result too.
  other = tmp_path / "other"
  other.mkdir()
  (other / "cluster_parity.png").write_bytes(b"mine")
  with pytest.raises(evaluation.EvalError, match=r"\(cluster_parity.png\); pass --overwrite"):
    evaluation.main(argv[:5] + [str(other)] + argv[6:])


def test_eval_default_output_dir_is_not_overwritten(vocab, tiny_ckpt, tmp_path, monkeypatch):
  import shutil
  path, _, _ = tiny_ckpt
  ckpt = tmp_path / "ckpt"
  shutil.copytree(path, ckpt)
  argv = ["--checkpoint", str(ckpt), "--task", TOY_TASK, "--max_decode_length", "2",
          "--max_examples", "2", "--batch_size", "2"]
  assert evaluation.main(argv) == 0
  monkeypatch.setattr(evaluation, "load_checkpoint", _no_load)
  with pytest.raises(evaluation.EvalError, match=r"the default --output_dir .*"
                                                 r"eval_validation_step0 already holds"):
    evaluation.main(argv)


def test_eval_unwritable_output_dir_fails_before_loading(vocab, tiny_ckpt, tmp_path, monkeypatch):
  path, _, _ = tiny_ckpt
  monkeypatch.setattr(evaluation, "load_checkpoint", _no_load)

  def read_only(*args, **kwargs):
    raise OSError(30, "Read-only file system")
  monkeypatch.setattr(reports.tempfile, "mkstemp", read_only)
  with pytest.raises(Exception, match=r"--output_dir .*/ro/ev is not writable \(Read-only "
                                     r"file system in .*/test_eval_unwritable\w*\); choose") as e:
    evaluation.main(["--checkpoint", path, "--task", TOY_TASK, "--output_dir",
                     str(tmp_path / "ro" / "ev")])
  from flanjax.errors import FlanjaxError
  assert isinstance(e.value, FlanjaxError)
  assert not (tmp_path / "ro").exists()


@pytest.mark.parametrize("flag,value", [("--batch_size", "0"), ("--max_examples", "-1"),
                                        ("--max_examples", "0"), ("--max_decode_length", "0"),
                                        ("--num_shots", "-1"), ("--batch_size", "two")])
def test_eval_bad_sizes_name_the_flag(flag, value, capsys):
  with pytest.raises(SystemExit) as e:
    evaluation.main(["--checkpoint", "/nonexistent", "--task", TOY_TASK, flag, value])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert len(err.splitlines()) == 1 and err.startswith(f"flanjax eval: error: argument {flag}: ")
  assert "must be an integer >=" in err or "not an integer" in err


def test_eval_bad_sizes_from_gin_name_the_binding(vocab, tiny_ckpt):
  from flanjax.gin_config import gin
  path, _, _ = tiny_ckpt
  gin.clear_config()
  try:
    with pytest.raises(evaluation.EvalError, match=r"^--batch_size=0 \(evaluate.batch_size\): "
                                                   r"must be an integer >= 1\.$"):
      evaluation.main(["--checkpoint", path, "--task", TOY_TASK, "--gin.evaluate.batch_size=0"])
    gin.clear_config()
    with pytest.raises(evaluation.EvalError, match=r"--max_examples=-1 .*leave it unset for all"):
      evaluation.main(["--checkpoint", path, "--task", TOY_TASK,
                       "--gin.evaluate.max_examples=-1"])
    gin.clear_config()  # settings without a flag name their binding; checked before any load
    with pytest.raises(evaluation.EvalError, match=(
        r"^--gin.evaluate.task_feature_lengths=\{'inputs': 0\} "
        r"\(evaluate.task_feature_lengths\): give a dict of positive lengths")):
      evaluation.main(["--checkpoint", path, "--task", TOY_TASK,
                       "--gin.evaluate.task_feature_lengths={'inputs': 0}"])
    gin.clear_config()
    with pytest.raises(evaluation.EvalError, match=(
        r"^--templates='all' \(evaluate.templates\): use one of sampled, each\.$")):
      evaluation.main(["--checkpoint", path, "--task", TOY_TASK,
                       "--gin.evaluate.templates='all'"])
  finally:
    gin.clear_config()
  with pytest.raises(evaluation.EvalError, match=r"batch_size=0 \(--batch_size\)"):
    evaluation.ModelFns(tiny_config(), None, 0)


def test_eval_checkpoint_that_is_a_file(vocab, tmp_path):
  (tmp_path / "readme").write_text("not a checkpoint")
  with pytest.raises(evaluation.EvalError, match=r"--checkpoint .*readme is a file, not a "
                                                 r"directory"):
    evaluation.main(["--checkpoint", str(tmp_path / "readme"), "--task", TOY_TASK])


def test_tasks_of_another_vocabulary_are_refused(tiny_ckpt, tmp_path):
  """A byte-vocabulary checkpoint on the offline tasks (SentencePiece): refused on one line,
  before anything is evaluated or written."""
  path = tiny_ckpt[0]
  out = tmp_path / "eval"
  with pytest.raises(evaluation.EvalError, match=(
      r"^task\(s\) offline_nli are tokenized with the vocabulary \{'type': 'sentencepiece'.* but "
      r"the checkpoint's is \{'type': 'byte'.*: the model would read other token ids")):
    evaluation.main(["--checkpoint", path, "--task", "offline_nli", "--output_dir", str(out),
                     "--max_examples", "2"])
  assert not os.path.exists(out / "metrics.json")
  # The same SentencePiece model with other (or unrecorded) extra ids is the same vocabulary:
  # the ids of text do not change. A vocabulary flanjax cannot describe is not compared.
  import seqio

  from flanjax import vocab
  tasks = evaluation.resolve_tasks("offline_nli", "validation")
  for mine in ({"type": "sentencepiece", "path": vocab.OFFLINE_SPM_PATH},
               seqio.SentencePieceVocabulary(vocab.OFFLINE_SPM_PATH, extra_ids=0),
               seqio.PassThroughVocabulary(size=128)):
    evaluation.check_task_vocabularies(tasks, mine)


def test_eval_warns_about_bindings_it_does_not_read(tiny_ckpt, tmp_path, monkeypatch, caplog):
  """eval's model is the checkpoint's: train / T5Config / OptimizerConfig bindings (a training
  run's gin files passed on) have no effect, and it says so on one line."""
  import logging

  from flanjax.gin_config import gin

  class Stop(Exception):
    pass

  def stop(*a, **k):
    raise Stop
  monkeypatch.setattr(evaluation, "evaluate", stop)
  try:
    with caplog.at_level(logging.WARNING, logger="flanjax.evaluation"), pytest.raises(Stop):
      evaluation.main(["--checkpoint", tiny_ckpt[0], "--task", "offline_nli",
                       "--gin.T5Config.dropout_rate=0.1", "--gin_file=runs/finetune.gin"])
  finally:
    gin.clear_config()
  assert "eval uses only evaluate.* bindings; ignored: T5Config.dropout_rate, " in caplog.text
  assert "train.batch_size" in caplog.text


def test_rank_metrics_of_a_task_come_from_its_rank_winners(vocab, tmp_path, monkeypatch):
  """A task with rank_metrics="grouped_f1a_em" (MultiRC's SuperGLUE metrics) reports rank_f1a
  and rank_em beside rank_accuracy, from the same winners: FakeFns makes "no" win every time."""
  import seqio

  from flanjax import registration
  from flanjax.templates import Template
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)
  rows = [("q1", "yes"), ("q1", "no"), ("q2", "no"), ("q2", "no"), ("q3", "yes")]
  p = tmp_path / "validation.jsonl"
  p.write_text("".join(json.dumps({"q": f"Is answer {i} right for {g}?", "group": g,
                                   "answer": a}) + "\n" for i, (g, a) in enumerate(rows)))
  name = "h26_toy_grouped"
  registration.register_file_task(name, {"validation": str(p)}, cluster="toy",
                                  metric="accuracy", vocabulary=seqio.ByteVocabulary(),
                                  options=["no", "yes"], rank_metrics="grouped_f1a_em",
                                  templates=[Template("{q}{options_}", "{answer}")])
  try:
    res = evaluation.evaluate_tasks(tiny_config(), None, None, name, "validation", None,
                                    batch_size=4)
  finally:
    seqio.TaskRegistry.remove(name)
  m = res["tasks"][name]["metrics"]
  assert m["rank_accuracy"] == pytest.approx(60.0)  # the three "no" rows
  assert m["rank_f1a"] == 0.0                       # no "yes" predicted
  assert m["rank_em"] == pytest.approx(100 / 3)     # only q2 has every answer right
  with pytest.raises(FlanjaxError, match="rank_metrics='f1a' is not one of"):
    registration.register_file_task("h26_bad", {"validation": str(p)}, cluster="toy",
                                    metric="accuracy", options=["no", "yes"], rank_metrics="f1a",
                                    templates=[Template("{q}{options_}", "{answer}")])


def test_infer_and_the_contamination_check_read_the_texts_eval_scores(tmp_path, monkeypatch):
  """`flanjax infer --task` and the contamination check render each example with the template
  evaluation draws for it (EVAL_SEED); they had used seed 0, so other templates."""
  import flanjax.tasks  # noqa: F401

  from flanjax import contamination, infer, pipeline
  monkeypatch.setattr(evaluation, "ModelFns", FakeFns)
  evaluation.evaluate_tasks(tiny_config(2048), None, None, "offline_sentiment", "validation",
                            str(tmp_path), max_examples=8, batch_size=4)
  scored = [r["input"] for r in reports.read_predictions(str(tmp_path / "predictions.jsonl"))]
  assert [r["inputs"] for r in infer.task_rows("offline_sentiment", "validation", 8)] == scored
  assert contamination.mixture_inputs("offline_sentiment", "validation", max_examples=8,
                                      seed=evaluation.EVAL_SEED) == scored
  ds = pipeline.eval_datasets("offline_sentiment", "validation", max_examples=8)
  assert [ex["inputs_pretokenized"].decode() for ex in
          ds["offline_sentiment"].as_numpy_iterator()] == scored
