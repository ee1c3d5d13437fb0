"""`flanjax infer`: predict / score JSONL rows or a task's examples with a tiny checkpoint."""
import json

import numpy as np
import pytest
from test_evaluation import (
  EXAMPLES,
  TOY_TASK,
  reference_log_likelihood,
  register_toy_tasks,
  save_tiny_checkpoint,
)

from flanjax import infer


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("ckpt") / "tiny")
  config, params = save_tiny_checkpoint(path, seed=1)
  return path, config, params


def _write(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


def _read(path):
  return [json.loads(line) for line in open(path)]


def test_read_rows_errors(tmp_path):
  with pytest.raises(infer.InferError, match="does not exist"):
    infer.read_rows(str(tmp_path / "nope.jsonl"), "predict")
  with pytest.raises(infer.InferError, match=rf"^--input {tmp_path} is a directory; give a "
                                             r"\.jsonl file"):
    infer.read_rows(str(tmp_path), "predict")
  p = _write(tmp_path / "a.jsonl", [{"inputs": "x"}])
  with pytest.raises(infer.InferError, match=r"a.jsonl:1: row has no 'targets'"):
    infer.read_rows(p, "score")
  p = _write(tmp_path / "b.jsonl", [{"inputs": "x"}, {"text": "y"}])
  with pytest.raises(infer.InferError, match=r"b.jsonl:2: row has no 'inputs'"):
    infer.read_rows(p, "predict")
  p = _write(tmp_path / "c.jsonl", [{"inputs": 3}])
  with pytest.raises(infer.InferError, match="must be a string"):
    infer.read_rows(p, "predict")


def test_infer_score_and_predict(tiny_ckpt, tmp_path):
  import seqio
  path, config, params = tiny_ckpt
  vocab = seqio.ByteVocabulary()
  rows = [{"inputs": "Is 2 even?", "targets": "yes", "id": 7},
          {"inputs": "A longer input about nothing", "targets": "no"},
          {"inputs": "x", "targets": "maybe not"}]
  src = _write(tmp_path / "in.jsonl", rows)
  out = str(tmp_path / "scored.jsonl")
  assert infer.main(["--checkpoint", path, "--mode", "score", "--input", src, "--output", out,
                     "--batch_size", "2"]) == 0
  scored = _read(out)
  assert len(scored) == 3 and scored[0]["id"] == 7  # input fields are kept
  for r in scored:
    want = reference_log_likelihood(config, params, list(vocab.encode(r["inputs"])) + [1],
                                    list(vocab.encode(r["targets"])) + [1])
    assert r["score"] == pytest.approx(want, abs=1e-3)
    assert r["num_target_tokens"] == len(r["targets"]) + 1

  out2 = str(tmp_path / "predicted.jsonl")
  assert infer.main(["--checkpoint", path, "--mode", "predict", "--input", src, "--output", out2,
                     "--max_decode_length", "5"]) == 0
  predicted = _read(out2)
  assert [r["inputs"] for r in predicted] == [r["inputs"] for r in rows]
  assert all(isinstance(r["prediction"], str) for r in predicted)
  # Greedy decoding agrees with the restored model's own predict on the same input.
  from flanjax import decoding
  tokens = np.zeros((1, 16), np.int32)
  enc = list(vocab.encode(rows[0]["inputs"])) + [1]
  tokens[0, :len(enc)] = enc
  want = vocab.decode(np.asarray(decoding.predict(config, params, tokens,
                                                  max_decode_length=5))[0].tolist())
  assert predicted[0]["prediction"] == want


def test_infer_beam_flags(tiny_ckpt, tmp_path, decode_settings, capsys):
  """--num_beams / --alpha reach beam search; without --decode_method beam they are refused."""
  path, _, _ = tiny_ckpt
  seen = decode_settings
  src = _write(tmp_path / "in.jsonl", [{"inputs": "Is 2 even?"}, {"inputs": "x"}])
  base = ["--checkpoint", path, "--mode", "predict", "--input", src, "--max_decode_length", "3"]
  assert infer.main(base + ["--output", str(tmp_path / "o.jsonl"), "--decode_method", "beam",
                            "--num_beams", "3", "--alpha", "1.5"]) == 0
  assert set(seen) == {("beam", 3, 1.5)} and len(_read(tmp_path / "o.jsonl")) == 2
  with pytest.raises(infer.InferError, match=r"^--alpha set beam search, but --decode_method is "
                                             r"'greedy': add --decode_method beam"):
    infer.main(base + ["--output", str(tmp_path / "p.jsonl"), "--alpha", "0"])
  with pytest.raises(SystemExit):
    infer.main(base + ["--output", str(tmp_path / "p.jsonl"), "--alpha", "-1"])
  err = capsys.readouterr().err
  assert err.startswith("flanjax infer: error: argument --alpha: must be a number >= 0, got -1")


def test_infer_task_rows(tiny_ckpt, tmp_path):
  register_toy_tasks()
  path, _, _ = tiny_ckpt
  out = str(tmp_path / "task.jsonl")
  assert infer.main(["--checkpoint", path, "--mode", "score", "--task", TOY_TASK,
                     "--output", out]) == 0
  rows = _read(out)
  assert [r["targets"] for r in rows] == [e["targets"] for e in EXAMPLES]
  assert all(r["task"] == TOY_TASK and r["score"] < 0 for r in rows)


def test_infer_refuses_to_overwrite_input(tiny_ckpt, tmp_path):
  path, _, _ = tiny_ckpt
  src = _write(tmp_path / "in.jsonl", [{"inputs": "x"}])
  with pytest.raises(infer.InferError, match="must differ"):
    infer.main(["--checkpoint", path, "--mode", "predict", "--input", src, "--output", src])


def test_infer_refuses_existing_output_unless_overwrite(tiny_ckpt, tmp_path):
  path, _, _ = tiny_ckpt
  src = _write(tmp_path / "in.jsonl", [{"inputs": "x"}])
  out = tmp_path / "out.jsonl"
  out.write_text("precious\n")
  argv = ["--checkpoint", path, "--mode", "predict", "--input", src, "--output", str(out),
          "--max_decode_length", "3"]
  with pytest.raises(infer.InferError, match="already exists; pass --overwrite"):
    infer.main(argv)
  assert out.read_text() == "precious\n"
  assert infer.main(argv + ["--overwrite"]) == 0
  assert len(_read(out)) == 1 and "prediction" in _read(out)[0]
  folder = tmp_path / "folder"  # a directory: said first, as --overwrite cannot help
  folder.mkdir()
  with pytest.raises(infer.InferError, match=rf"^--output {folder} is a directory"):
    infer.main(argv[:-3] + [str(folder), "--max_decode_length", "3"])


def test_infer_bad_mesh_shape_and_module_are_one_line_errors(tiny_ckpt, tmp_path):
  from flanjax.errors import FlanjaxError
  path, _, _ = tiny_ckpt
  src = _write(tmp_path / "in.jsonl", [{"inputs": "x"}])
  base = ["--checkpoint", path, "--mode", "predict", "--input", src,
          "--output", str(tmp_path / "o.jsonl")]
  with pytest.raises(FlanjaxError, match=r"--mesh_shape='a': use comma-separated ints"):
    infer.main(base + ["--mesh_shape", "a"])
  with pytest.raises(FlanjaxError, match=r"--module no_such_mod_xyz: no module named"):
    infer.main(base + ["--module", "no_such_mod_xyz"])
  with pytest.raises(FlanjaxError, match=r"^--split and --max_examples select a --task's "
                                         r"examples; with --input every row of the file is used"):
    infer.main(base + ["--split", "train", "--max_examples", "2"])
  assert not (tmp_path / "o.jsonl").exists()


def test_a_checkpoint_whose_vocabulary_is_gone_is_one_line(tiny_ckpt, tmp_path):
  """A checkpoint recording a SentencePiece model that no longer exists (an earlier flanjax's
  absolute path, a deleted original) is one error naming the file and where to put a copy,
  before the parameters are restored, not TensorFlow's traceback."""
  import shutil

  from flanjax import checkpoints
  path, _, _ = tiny_ckpt
  moved = tmp_path / "moved"
  shutil.copytree(path, moved)
  info = json.load(open(moved / "flanjax_model.json"))
  info["vocabulary"] = {"type": "sentencepiece", "path": "/gone/spm.model", "extra_ids": 100}
  (moved / "flanjax_model.json").write_text(json.dumps(info))
  src = _write(tmp_path / "in.jsonl", [{"inputs": "x"}])
  with pytest.raises(checkpoints.CheckpointError, match=(
      rf"^{moved}/flanjax_model.json records the SentencePiece model /gone/spm.model, which "
      rf"does not exist \(moved or deleted\?\); copy that SentencePiece model to "
      rf"{moved}/spiece.model\.$")):
    infer.main(["--checkpoint", str(moved), "--mode", "predict", "--input", src,
                "--output", str(tmp_path / "o.jsonl")])
  assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("flag,value", [("--batch_size", "0"), ("--max_decode_length", "0"),
                                        ("--max_input_length", "0"), ("--max_input_length", "1"),
                                        ("--max_target_length", "1"), ("--max_examples", "-1")])
def test_infer_bad_sizes_name_the_flag(flag, value, tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    infer.main(["--checkpoint", "/nonexistent", "--mode", "predict", "--task", TOY_TASK,
                "--output", str(tmp_path / "o.jsonl"), flag, value])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert len(err.splitlines()) == 1
  assert err.startswith(f"flanjax infer: error: argument {flag}: must be an integer >=")


def test_infer_run_checks_sizes(tiny_ckpt):
  _, config, params = tiny_ckpt
  rows = [{"inputs": "x"}]
  with pytest.raises(infer.InferError, match=r"^--batch_size=0: must be an integer >= 1\.$"):
    infer.run(config, params, None, rows, "predict", batch_size=0)
  with pytest.raises(infer.InferError, match=r"--max_input_length=1: .*>= 2 \(one token plus"):
    infer.run(config, params, None, rows, "predict", max_input_length=1)


def test_infer_unwritable_output_fails_before_loading(tiny_ckpt, tmp_path, monkeypatch):
  from flanjax import evaluation, reports
  from flanjax.errors import FlanjaxError
  path, _, _ = tiny_ckpt
  src = _write(tmp_path / "in.jsonl", [{"inputs": "x"}])

  def no_load(*args, **kwargs):
    raise AssertionError("the checkpoint was loaded before the output folder was checked")

  def read_only(*args, **kwargs):
    raise OSError(30, "Read-only file system")
  monkeypatch.setattr(evaluation, "load_checkpoint", no_load)
  monkeypatch.setattr(reports.tempfile, "mkstemp", read_only)
  with pytest.raises(FlanjaxError, match=r"--output folder .*/ro is not writable \(Read-only"):
    infer.main(["--checkpoint", path, "--mode", "predict", "--input", src,
                "--output", str(tmp_path / "ro" / "o.jsonl")])


def test_infer_checkpoint_that_is_a_file(tmp_path):
  from flanjax.errors import FlanjaxError
  src = _write(tmp_path / "in.jsonl", [{"inputs": "x"}])
  with pytest.raises(FlanjaxError, match=r"--checkpoint .*in.jsonl is a file, not a directory"):
    infer.main(["--checkpoint", src, "--mode", "predict", "--input", src,
                "--output", str(tmp_path / "o.jsonl")])


def test_infer_console_script_prints_no_tensorflow_banner(tiny_ckpt, tmp_path):
  """TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) stay off `flanjax infer`'s stderr."""
  import os
  import pathlib
  import subprocess
  import sys

  from conftest import CACHE_ENV, NEUTRAL_CWD
  path, _, _ = tiny_ckpt
  src = _write(tmp_path / "in.jsonl", [{"inputs": "x"}])
  exe = pathlib.Path(sys.executable).parent / "flanjax"
  env = {k: v for k, v in os.environ.items()
         if k not in ("TF_CPP_MIN_LOG_LEVEL", "FLANJAX_VERBOSE")}
  env.update(CACHE_ENV, JAX_PLATFORMS="cpu")
  proc = subprocess.run([str(exe), "infer", "--checkpoint", path, "--mode", "predict", "--input",
                         src, "--output", str(tmp_path / "o.jsonl"), "--max_decode_length", "2"],
                        cwd=NEUTRAL_CWD, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "Wrote 1 rows" in proc.stdout
  for banner in ("oneDNN", "cudart_stub", "absl::InitializeLog"):
    assert banner not in proc.stderr, proc.stderr


def test_infer_checks_the_vocabulary_before_loading(tiny_ckpt, tmp_path, monkeypatch):
  """No vocabulary, or one with more ids than the model: one error naming the fix for that kind
  of checkpoint, before any parameter is loaded (before, a vocabulary too large gave NaN scores
  and empty predictions)."""
  import jax

  from flanjax import checkpoints, convert, evaluation, model
  from flanjax.config import get_config
  _, config, params = tiny_ckpt
  src = _write(tmp_path / "in.jsonl", [{"inputs": "x", "targets": "y"}])

  def no_load(*args, **kwargs):
    raise AssertionError("the parameters were loaded before the vocabulary was checked")
  monkeypatch.setattr(evaluation, "load_checkpoint", no_load)

  def run(ckpt):
    infer.main(["--checkpoint", str(ckpt), "--mode", "score", "--input", src,
                "--output", str(tmp_path / "o.jsonl")])
  checkpoints.save_pretrained(str(tmp_path / "none"), params, config, None)
  with pytest.raises(infer.InferError, match=(
      rf"^--checkpoint {tmp_path}/none records no vocabulary, so its text cannot be encoded: "
      rf"convert it again with its SentencePiece model, `flanjax convert --from {tmp_path}/none "
      r"--to NEW_DIR --vocab spiece.model`, and use NEW_DIR\.$")):
    run(tmp_path / "none")
  convert.save_hf(tmp_path / "hf", config, params)  # a HF directory without spiece.model
  with pytest.raises(infer.InferError, match=(
      rf"^--checkpoint {tmp_path}/hf has no spiece.model, so its text cannot be encoded: copy "
      rf"the model's spiece.model into {tmp_path}/hf\.$")):
    run(tmp_path / "hf")
  offline = checkpoints.BUILTIN_VOCABULARIES["offline"]  # 796 pieces + 100 extra ids > 264
  (tmp_path / "hf" / "spiece.model").write_bytes(open(offline, "rb").read())
  with pytest.raises(infer.InferError, match=(
      rf"^The vocabulary of --checkpoint {tmp_path}/hf has 896 ids but the model has "
      rf"vocab_size=264, so it is not the model's vocabulary; put the model's own spiece.model "
      rf"in {tmp_path}/hf\.$")):
    run(tmp_path / "hf")
  small = get_config("tiny", vocab_size=67, dtype="float32")  # the byte vocabulary has 259 ids
  small_params = jax.device_get(model.init_params(small, jax.random.PRNGKey(0)))
  checkpoints.save_pretrained(str(tmp_path / "v67"), small_params, small, {"type": "byte"})
  with pytest.raises(infer.InferError, match=(
      rf"^The vocabulary of --checkpoint {tmp_path}/v67 has 259 ids but the model has "
      r"vocab_size=67, so it is not the model's vocabulary; convert it again with the model's "
      rf"own SentencePiece model: `flanjax convert --from {tmp_path}/v67 --to NEW_DIR --vocab "
      r"spiece.model`\.$")):
    run(tmp_path / "v67")
  import seqio
  with pytest.raises(infer.InferError, match=r"^The vocabulary has 259 ids but the model has "
                                             r"vocab_size=67"):
    infer.run(small, small_params, seqio.ByteVocabulary(), [{"inputs": "x"}], "predict")
  assert not (tmp_path / "o.jsonl").exists()


def test_non_finite_scores_are_written_as_null(tiny_ckpt, tmp_path):
  """JSON has no NaN: a score that is not finite is null, and the file stays valid JSON."""
  import jax
  import seqio
  _, config, params = tiny_ckpt
  broken = jax.tree.map(lambda x: x * np.float32("nan"), params)
  out = infer.run(config, broken, seqio.ByteVocabulary(), [{"inputs": "x", "targets": "y"}],
                  "score", batch_size=1)
  assert out[0]["score"] is None
  infer.write_rows(str(tmp_path / "o.jsonl"), out)
  text = (tmp_path / "o.jsonl").read_text()
  assert "NaN" not in text and json.loads(text)["score"] is None


EMPTY_TASK = "flanjax_test_infer_empty_split"


def test_infer_task_split_without_examples(tiny_ckpt, tmp_path):
  import seqio
  import tensorflow as tf

  from flanjax import metrics
  if EMPTY_TASK not in seqio.TaskRegistry.names():
    vocab = seqio.ByteVocabulary()
    seqio.TaskRegistry.add(
        EMPTY_TASK, source=seqio.FunctionDataSource(
            lambda split, shuffle_files, seed=None: tf.data.Dataset.from_tensor_slices(
                {"inputs": tf.constant([], tf.string), "targets": tf.constant([], tf.string)}),
            splits=["validation"]),
        preprocessors=[seqio.preprocessors.tokenize],
        output_features={"inputs": seqio.Feature(vocab), "targets": seqio.Feature(vocab)},
        metric_fns=[metrics.accuracy])
  path, _, _ = tiny_ckpt
  with pytest.raises(infer.InferError, match=rf"^--task {EMPTY_TASK} yields no examples in its "
                                             r"'validation' split; choose another --split"):
    infer.main(["--checkpoint", path, "--mode", "score", "--task", EMPTY_TASK,
                "--output", str(tmp_path / "o.jsonl")])
