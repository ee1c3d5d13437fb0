"""flanjax checkpoints: save/load_pretrained, the training manager, atomicity, errors."""
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_python, truncate_arrays
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from flanjax import checkpoints, partitioning
from flanjax.config import get_config
from flanjax.errors import FlanjaxError
from flanjax.train import TrainState

CONFIG = get_config("tiny", vocab_size=128)
PARAMS = {"token_embedder": {"embedding": np.arange(12, dtype=np.float32).reshape(4, 3)},
          "decoder": {"decoder_norm": {"scale": np.ones(3, np.float32)}}}


def test_save_and_load_pretrained(tmp_path):
  checkpoints.save_pretrained(tmp_path, PARAMS, CONFIG, "/x/spm.model", step=5)
  info = json.load(open(tmp_path / "flanjax_model.json"))
  assert info["format_version"] == 1
  assert info["vocabulary"] == {"type": "sentencepiece", "path": "/x/spm.model"}
  config, params, vocab = checkpoints.load_pretrained(tmp_path)
  assert config == CONFIG and vocab == info["vocabulary"]
  jax.tree.map(np.testing.assert_array_equal, params, PARAMS)
  assert isinstance(params["token_embedder"]["embedding"], np.ndarray)
  # Onto target shardings (any mesh).
  mesh = partitioning.make_mesh((1, 1))
  sh = jax.tree.map(lambda _: NamedSharding(mesh, P()), PARAMS)
  _, arrays, _ = checkpoints.load_pretrained(tmp_path, shardings=sh)
  assert arrays["decoder"]["decoder_norm"]["scale"].sharding == sh["decoder"]["decoder_norm"][
      "scale"]
  with pytest.raises(checkpoints.CheckpointError, match="never overwrites"):
    checkpoints.save_pretrained(tmp_path, PARAMS, CONFIG, None, step=5)
  # A training run's folder: its flanjax_model.json describes that run's model.
  os.makedirs(tmp_path / "run" / "7")
  for item in checkpoints.TRAIN_ITEMS:
    os.makedirs(tmp_path / "run" / "7" / item)
  info = tmp_path / "run" / "flanjax_model.json"
  info.write_text("{}")
  with pytest.raises(checkpoints.CheckpointError, match=r"holds training checkpoints \(steps "
                                                        r"\[7\]\); save the pretrained "
                                                        r"checkpoint into a new directory"):
    checkpoints.save_pretrained(tmp_path / "run", PARAMS, CONFIG, None, step=0)
  assert info.read_text() == "{}"
  with pytest.raises(checkpoints.CheckpointError, match=r"no checkpoint at step 3; available: "
                                                        r"\[5\]"):
    checkpoints.load_pretrained(tmp_path, step=3)


def test_load_errors(tmp_path):
  with pytest.raises(checkpoints.CheckpointError, match="does not exist"):
    checkpoints.load_pretrained(tmp_path / "nope")
  with pytest.raises(checkpoints.CheckpointError, match="flanjax_model.json is missing.*convert"):
    checkpoints.load_pretrained(tmp_path)
  # A quickstart / heldout --output_dir: the models inside are named.
  out = tmp_path / "qs"
  checkpoints.write_model_info(out / "model", CONFIG)
  with pytest.raises(checkpoints.CheckpointError, match=(
      rf"^{out} is not a flanjax checkpoint \(flanjax_model.json is missing\) but holds one: "
      rf"pass {out}/model\.$")):
    checkpoints.load_pretrained(out)
  checkpoints.write_model_info(out / "nli" / "model", CONFIG)
  with pytest.raises(checkpoints.CheckpointError, match=rf"but holds 2: pass {out}/model or "
                                                        rf"{out}/nli/model\.$"):
    checkpoints.read_model_info(out)
  checkpoints.write_model_info(tmp_path, CONFIG)
  with pytest.raises(checkpoints.CheckpointError, match="no complete checkpoint"):
    checkpoints.load_pretrained(tmp_path)
  bad = {"decoder": {"decoder_norm": {"scale": np.ones(4, np.float32)}}}
  with pytest.raises(checkpoints.CheckpointError,
                     match=r"token_embedder/embedding: missing .*decoder_norm/scale: \(4,\) != "
                           r"expected \(3,\)"):
    checkpoints.check_params_match(bad, PARAMS, "ckpt")


def test_vocabulary_info():
  assert checkpoints.vocabulary_info(None) is None
  assert checkpoints.vocabulary_info({"type": "byte"}) == {"type": "byte"}
  with pytest.raises(checkpoints.CheckpointError, match="'type'"):
    checkpoints.vocabulary_info({"type": "bpe"})


def test_checkpoints_record_their_vocabulary_relocatably(tmp_path, monkeypatch):
  """flanjax's packaged SentencePiece model is recorded by name, any other local one as the
  checkpoint's own copy ({"file": "spiece.model"}): a moved venv or a copied and then deleted
  checkpoint keeps its vocabulary. A model found nowhere is one CheckpointError."""
  import shutil
  builtin = checkpoints.BUILTIN_VOCABULARIES["offline"]
  checkpoints.save_pretrained(tmp_path / "a", PARAMS, CONFIG,
                              {"type": "sentencepiece", "path": builtin, "extra_ids": 100})
  raw = json.load(open(tmp_path / "a" / "flanjax_model.json"))["vocabulary"]
  assert raw == {"type": "sentencepiece", "builtin": "offline", "extra_ids": 100}
  assert not os.path.exists(tmp_path / "a" / "spiece.model")
  assert checkpoints.load_pretrained(tmp_path / "a")[2] == {
      "type": "sentencepiece", "path": builtin, "extra_ids": 100}

  spm = tmp_path / "elsewhere" / "my.model"
  spm.parent.mkdir()
  spm.write_bytes(b"a sentencepiece model")
  checkpoints.save_pretrained(tmp_path / "b", PARAMS, CONFIG, str(spm))
  raw = json.load(open(tmp_path / "b" / "flanjax_model.json"))["vocabulary"]
  assert raw == {"type": "sentencepiece", "file": "spiece.model"}
  assert (tmp_path / "b" / "spiece.model").read_bytes() == b"a sentencepiece model"
  shutil.copytree(tmp_path / "b", tmp_path / "b_copy")
  shutil.rmtree(tmp_path / "b")
  shutil.rmtree(spm.parent)
  vocab = checkpoints.load_pretrained(tmp_path / "b_copy")[2]
  assert vocab["path"] == str(tmp_path / "b_copy" / "spiece.model")

  # Records of earlier flanjax: absolute paths. Another venv's packaged model is this one's;
  # a moved checkpoint's own copy is found next to its flanjax_model.json.
  old = {"type": "sentencepiece", "path": "/old/venv/site-packages/flanjax/assets/"
         "offline_spm.model", "extra_ids": 100}
  assert checkpoints.resolve_vocabulary(old, str(tmp_path / "a"))["path"] == builtin
  old = {"type": "sentencepiece", "path": str(tmp_path / "b" / "spiece.model")}
  assert checkpoints.resolve_vocabulary(old, str(tmp_path / "b_copy"))["path"] == str(
      tmp_path / "b_copy" / "spiece.model")
  # ... or relative to the working directory the earlier run had.
  (tmp_path / "cwd" / "spm").mkdir(parents=True)
  (tmp_path / "cwd" / "spm" / "my.model").write_bytes(b"m")
  monkeypatch.chdir(tmp_path / "cwd")
  old = {"type": "sentencepiece", "path": "spm/my.model"}
  assert checkpoints.resolve_vocabulary(old, str(tmp_path / "a"))["path"] == str(
      tmp_path / "cwd" / "spm" / "my.model")
  # A checkpoint's raw record passed on to another checkpoint: refused (its file is elsewhere);
  # what load_pretrained returns (resolved) is copied.
  raw_b = json.load(open(tmp_path / "b_copy" / "flanjax_model.json"))["vocabulary"]
  with pytest.raises(checkpoints.CheckpointError, match="names a checkpoint's own file, which "):
    checkpoints.save_pretrained(tmp_path / "d", PARAMS, CONFIG, raw_b)
  checkpoints.save_pretrained(tmp_path / "d", PARAMS, CONFIG,
                              checkpoints.load_pretrained(tmp_path / "b_copy")[2])
  assert (tmp_path / "d" / "spiece.model").read_bytes() == b"a sentencepiece model"
  # Nowhere: one error naming the file and where to put it (before seqio is imported).
  os.remove(tmp_path / "b_copy" / "spiece.model")
  with pytest.raises(checkpoints.CheckpointError,
                     match=r"records the SentencePiece model .*b_copy/spiece.model, which does "
                           r"not exist .*copy that SentencePiece model to .*b_copy/spiece.model"):
    checkpoints.make_vocabulary(json.load(open(tmp_path / "b_copy" / "flanjax_model.json"))[
        "vocabulary"], str(tmp_path / "b_copy"))
  assert checkpoints.resolve_vocabulary(
      {"type": "sentencepiece", "path": "gs://bucket/spm.model"}, str(tmp_path))["path"] == (
          "gs://bucket/spm.model")
  with pytest.raises(checkpoints.CheckpointError, match="'bpe' is not one this flanjax ships"):
    checkpoints.resolve_vocabulary({"type": "sentencepiece", "builtin": "bpe"}, str(tmp_path))
  # A different spiece.model already in the folder is never replaced.
  (tmp_path / "c").mkdir()
  (tmp_path / "c" / "spiece.model").write_bytes(b"the user's file")
  other = tmp_path / "other.model"
  other.write_bytes(b"another model")
  with pytest.raises(checkpoints.CheckpointError, match="holds a spiece.model that is not"):
    checkpoints.save_pretrained(tmp_path / "c", PARAMS, CONFIG, str(other))
  assert (tmp_path / "c" / "spiece.model").read_bytes() == b"the user's file"


def _state(value):
  return TrainState(step=jnp.asarray(0, jnp.int32),
                    params={"w": jnp.full((4, 2), value, jnp.float32)},
                    opt_state={"mu": jnp.full((4,), -value, jnp.float32)})


def test_manager_keeps_last_k_and_restores_finalised_steps_only(tmp_path):
  mngr = checkpoints.TrainCheckpointManager(tmp_path, save_period=2, keep=2, async_save=True)
  for step in (2, 4, 6):
    mngr.save(step, _state(float(step)), {"step": step, "batches_consumed": step})
  mngr.wait()
  assert checkpoints.finalized_steps(tmp_path) == [4, 6]
  # A crashed save (orbax temp dir) and a step folder missing items never count as complete.
  os.makedirs(tmp_path / "8.orbax-checkpoint-tmp-1234" / "params")
  os.makedirs(tmp_path / "10" / "params")
  assert mngr.latest_step() == 6
  mesh = partitioning.make_mesh((1, 1))
  rep = NamedSharding(mesh, P())
  abstract = jax.eval_shape(lambda: _state(0.0))
  shardings = jax.tree.map(lambda _: rep, abstract)
  state, meta = mngr.restore(6, abstract, shardings)
  assert meta == {"step": 6, "batches_consumed": 6}
  assert int(state.step) == 6
  np.testing.assert_array_equal(state.params["w"], np.full((4, 2), 6.0))
  np.testing.assert_array_equal(state.opt_state["mu"], np.full((4,), -6.0))
  mngr.close()
  with pytest.raises(checkpoints.CheckpointError, match="best_metric"):
    checkpoints.TrainCheckpointManager(tmp_path, keep_best=1)


def test_path_keys_and_names_cover_dicts_attributes_and_sequences():
  import optax
  state = optax.adam(1e-3).init({"encoder": {"k": np.zeros(2)}})
  paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
  assert checkpoints.path_keys(paths[1]) == (0, "mu", "encoder", "k")
  assert checkpoints.path_name(paths[2]) == "0/nu/encoder/k"
  assert list(checkpoints._flat_names(PARAMS)) == ["decoder/decoder_norm/scale",
                                                   "token_embedder/embedding"]


def test_url_paths_are_refused_before_anything_is_written(tmp_path, monkeypatch):
  """gs:// would otherwise become a local folder "gs:" (checkpoints lost with the machine)."""
  from flanjax.train import train
  monkeypatch.chdir(tmp_path)
  with pytest.raises(checkpoints.CheckpointError, match=r"model_dir='gs://b/run' is a URL.*gcsfuse"):
    train(model_dir="gs://b/run", synthetic_data=True, num_steps=1)
  with pytest.raises(checkpoints.CheckpointError, match=r"'s3://b/ckpt' is a URL"):
    checkpoints.load_pretrained("s3://b/ckpt")
  assert os.listdir(tmp_path) == []
  assert checkpoints.local_dir("rel/run", "x") == str(tmp_path / "rel" / "run")


def _orbax_steps(path):
  """The steps Orbax's CheckpointManager finds in `path` (its own name parsing)."""
  import orbax.checkpoint as ocp
  return sorted(m.step for m in ocp.path.step.standard_name_format().find_all(path))


def test_entries_orbax_would_take_for_steps_are_refused_and_kept(tmp_path):
  """Orbax takes any numbered folder for a step (and deletes old ones) and deletes every
  *.orbax-checkpoint-tmp* folder at start: the manager refuses those flanjax did not write."""
  ours = tmp_path / "ours"
  mngr = checkpoints.TrainCheckpointManager(ours, save_period=2, keep=3, async_save=False)
  mngr.save(2, _state(2.0), {"step": 2, "batches_consumed": 2})
  mngr.close()
  os.makedirs(ours / "4.orbax-checkpoint-tmp" / "params.orbax-checkpoint-tmp")  # a killed save
  for name in ("007", "2.bad", "3.incomplete", "eval", "tensorboard"):  # not steps for Orbax
    os.makedirs(ours / name / "x")
  os.makedirs(ours / "data_state" / "2" / "process_0_of_1")
  assert checkpoints.foreign_entries(ours) == []
  assert _orbax_steps(ours) == [2]

  user = tmp_path / "user"
  os.makedirs(user / "2023")
  (user / "2023" / "report.csv").write_text("x")
  os.makedirs(user / "2024")
  os.makedirs(user / "0" / "params")
  (user / "0" / "notes.txt").write_text("x")
  (user / "7").write_text("a file")
  os.symlink(ours / "2", user / "5")
  os.makedirs(user / "backup.orbax-checkpoint-tmp")
  os.makedirs(user / "data_state" / "9" / "mine")
  os.makedirs(user / "12\n")  # Orbax's pattern ends in `$`, which takes a trailing newline
  # Orbax's own parser takes the numbered folders (the symlinked one too) for steps.
  assert _orbax_steps(user) == [0, 5, 12, 2023, 2024]
  found = checkpoints.foreign_entries(user)
  assert found == ["0/ (holds notes.txt, params)", "'12\\n'/ (empty)", "2023/ (holds report.csv)",
                   "2024/ (empty)", "5 (a symbolic link)", "7 (a file)",
                   "backup.orbax-checkpoint-tmp/ (empty)", "data_state/9/ (holds mine)"]
  before = sorted(str(p.relative_to(user)) for p in user.rglob("*"))
  with pytest.raises(checkpoints.CheckpointError,
                     match=r"model_dir .*user holds entries that are not flanjax checkpoint steps:"
                           r" 0/ \(holds notes.txt, params\), '12\\n'/ \(empty\), 2023/ \(holds "
                           r"report.csv\), .*"
                           r"move them out of .*user, or use another --model_dir"):
    checkpoints.TrainCheckpointManager(user, keep=1)
  assert sorted(str(p.relative_to(user)) for p in user.rglob("*")) == before


def test_step_names_follow_orbax(tmp_path):
  for name in ("0", "12", "2023", "007", "1a", "-1", "12.bad", "٣"):
    os.makedirs(tmp_path / name / "params")
  assert checkpoints.finalized_steps(tmp_path) == _orbax_steps(tmp_path) == [0, 12, 2023]


@pytest.mark.parametrize("content,match", [
    ("{bad", r"cannot be read as JSON \(JSONDecodeError: Expecting property name"),
    ("[]", "holds a JSON list, not an object"),
    ('{"format_version": 1}', 'has no "model_config" object'),
    ('{"format_version": 1, "model_config": {"d_modle": 8}}',
     r"its model_config is not a valid T5Config \(.*d_modle"),
    ('{"format_version": 1, "model_config": {"d_model": "64"}}',
     "its model_config is not a valid T5Config"),
    ('{"format_version": 1, "model_config": {}, "vocabulary": "spm.model"}',
     '"vocabulary" .* is not null'),
])
def test_a_damaged_model_info_file_is_a_clear_error(tmp_path, content, match):
  checkpoints.save_pretrained(tmp_path, PARAMS, CONFIG, None, step=1)
  (tmp_path / "flanjax_model.json").write_text(content)
  for load in (checkpoints.read_model_info, checkpoints.load_pretrained):
    with pytest.raises(checkpoints.CheckpointError,
                       match=f"{tmp_path / 'flanjax_model.json'}.*{match}.*restore it from a "
                             "copy, or rewrite it"):
      load(tmp_path)


def test_error_summary_for_checkpoint_and_convert_messages():
  """errors.summary: one line, the type unless it is a FlanjaxError, without tensorstore's
  appendix, and the start and end of a long message (what failed is said last)."""
  from flanjax.errors import summary
  ts = ValueError("NOT_FOUND: Error opening \"zarr\" driver: x/params/.zarray "
                  "[source locations='tensorstore/driver/zarr/driver.cc:1'] "
                  "[tensorstore_spec='{\"driver\":\"zarr\"}']\nsecond line")
  assert summary(ts) == 'ValueError: NOT_FOUND: Error opening "zarr" driver: x/params/.zarray'
  assert summary(FlanjaxError("model_dir x is a file.")) == "model_dir x is a file."
  assert summary(OSError()) == "OSError" and summary(FlanjaxError("")) == "FlanjaxError"
  for limit in (240, 300, 61):
    text = summary(ValueError("a" * 400 + "END"), limit=limit)
    assert len(text) == limit and text.startswith("ValueError: aaa") and text.endswith("aEND")
    assert " ... " in text


def test_model_info_is_rewritten_only_when_it_changes(tmp_path):
  checkpoints.write_model_info(tmp_path, CONFIG, {"type": "byte"})
  inode = os.stat(tmp_path / "flanjax_model.json").st_ino
  checkpoints.write_model_info(tmp_path, CONFIG, {"type": "byte"})
  assert os.stat(tmp_path / "flanjax_model.json").st_ino == inode  # not replaced
  checkpoints.write_model_info(tmp_path, CONFIG.replace(dropout_rate=0.1), {"type": "byte"})
  assert checkpoints.read_model_info(tmp_path)["model_config"]["dropout_rate"] == 0.1


def test_loading_a_damaged_step_names_it_and_the_earlier_steps(tmp_path):
  checkpoints.save_pretrained(tmp_path, PARAMS, CONFIG, None, step=1)
  checkpoints.save_pretrained(tmp_path, PARAMS, CONFIG, None, step=2)
  truncate_arrays(tmp_path / "2")
  with pytest.raises(checkpoints.CheckpointError,
                     match=rf"checkpoint step 2 in {tmp_path} is unreadable \(ValueError: "
                           r"OUT_OF_RANGE.*not valid for value of size 10\); load an earlier step "
                           r"\(finalized: \[1\]\), or move it aside \(e.g. mv .*/2 .*/2.bad\)\.$"):
    checkpoints.load_pretrained(tmp_path)
  _, params, _ = checkpoints.load_pretrained(tmp_path, step=1)
  jax.tree.map(np.testing.assert_array_equal, params, PARAMS)


def _failing_tf_error():
  """An exception that looks like TensorFlow's (e.g. ResourceExhaustedError), without TF."""
  cls = type("ResourceExhaustedError", (Exception,),
             {"__module__": "tensorflow.python.framework.errors_impl"})
  return cls("[Op:SaveV2] state_temp/part-0; No space left on device")


def test_a_failed_save_names_the_step_and_leaves_no_partial_files(tmp_path):
  mngr = checkpoints.TrainCheckpointManager(tmp_path, save_period=1, keep=3, async_save=False)
  mngr.write_data_state(1, lambda prefix: open(prefix + ".index", "w").close(),
                        {"batches_consumed": 1})
  mngr.save(1, _state(1.0), {"step": 1, "batches_consumed": 1})

  def full_disk(prefix):
    open(prefix + ".data", "w").close()  # a partial file, then the disk is full
    raise _failing_tf_error()
  with pytest.raises(checkpoints.CheckpointError,
                     match=r"could not save checkpoint step 2 in .* \(ResourceExhaustedError: "
                           r".*No space left on device\); the earlier checkpoints are intact \(the "
                           r"latest is step 1\)\. Free disk space and rerun the same command"):
    mngr.write_data_state(2, full_disk, {"batches_consumed": 2})
  assert os.listdir(tmp_path / "data_state") == ["1"]

  def orbax_full(*args, **kw):
    raise ValueError('RESOURCE_EXHAUSTED: Error writing "x/0.0": No space left on device')
  mngr.write_data_state(3, lambda prefix: None, {"batches_consumed": 3})
  os.makedirs(tmp_path / "3.orbax-checkpoint-tmp" / "params.orbax-checkpoint-tmp")
  real_save, mngr._mngr.save = mngr._mngr.save, orbax_full
  with pytest.raises(checkpoints.CheckpointError, match=r"could not save checkpoint step 3 .*"
                                                        r"the latest is step 1"):
    mngr.save(3, _state(3.0), {"step": 3, "batches_consumed": 3})
  assert sorted(os.listdir(tmp_path / "data_state")) == ["1"]
  assert not os.path.exists(tmp_path / "3.orbax-checkpoint-tmp")
  mngr._mngr.save = real_save
  mngr.close()  # the failure was reported: closing does not raise it again
  assert checkpoints.finalized_steps(tmp_path, checkpoints.TRAIN_ITEMS) == [1]


def test_an_async_save_failure_is_reported_for_its_step(tmp_path):
  mngr = checkpoints.TrainCheckpointManager(tmp_path, save_period=1, keep=3, async_save=True)
  mngr.save(1, _state(1.0), {"step": 1, "batches_consumed": 1})
  mngr.wait()
  mngr.save(2, _state(2.0), {"step": 2, "batches_consumed": 2})
  real_wait = mngr._mngr.wait_until_finished

  def failed_wait():
    real_wait()
    raise ValueError("RESOURCE_EXHAUSTED: No space left on device")
  mngr._mngr.wait_until_finished = failed_wait
  with pytest.raises(checkpoints.CheckpointError, match="could not save checkpoint step 2 .*"
                                                        "the latest is step 1"):
    mngr.save(3, _state(3.0), {"step": 3, "batches_consumed": 3})
  mngr.close()


def _wide_state(value):
  """20 arrays per item: Orbax writes them concurrently, so a failure of one finds others still
  running (the case that printed "Event loop is closed" tracebacks)."""
  return TrainState(step=jnp.asarray(0, jnp.int32),
                    params={f"w{i}": jnp.full((10,), value + i, jnp.float32) for i in range(20)},
                    opt_state={f"mu{i}": jnp.full((10,), -value - i, jnp.float32)
                               for i in range(20)})


_FIRST_SAVE_FAILS = """
import resource, signal, sys
import jax, jax.numpy as jnp
from flanjax import checkpoints
from flanjax.train import TrainState
state = TrainState(step=jnp.asarray(0, jnp.int32),
                   params={{f"w{{i}}": jnp.full((10,), 2.0 + i, jnp.float32) for i in range(20)}},
                   opt_state={{f"mu{{i}}": jnp.full((10,), -2.0 - i, jnp.float32)
                               for i in range(20)}})
jax.block_until_ready(state)
mngr = checkpoints.TrainCheckpointManager({model_dir!r}, save_period=1, async_save={async_save})
mngr.write_data_state(2, lambda prefix: open(prefix + ".index", "w").close(),
                      {{"batches_consumed": 2}})
# From here on no file grows beyond 1 KiB ("File too large"): the array writes fail as on a full
# disk, while the others of the save are still running.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
try:
  mngr.save(2, state, {{"step": 2, "batches_consumed": 2}})  # this process's first save
  mngr.wait()
except checkpoints.CheckpointError as e:
  print(f"flanjax train: error: {{e}}", file=sys.stderr)
finally:
  mngr.close()
"""


@pytest.mark.parametrize("async_save", [True, False])
def test_a_failed_first_save_prints_only_the_error_and_leaves_nothing_behind(tmp_path,
                                                                            async_save):
  """A process's first save failing in Orbax's array writes: the one CheckpointError line, with
  no "Event loop is closed" tracebacks of the writes still running (Orbax closed their event
  loop at the first failure) and no asyncio "never retrieved" errors; the writes still running
  end before the step's temporary folder is removed, so none of it is written again after."""
  mngr = checkpoints.TrainCheckpointManager(tmp_path, save_period=1, async_save=False)
  mngr.write_data_state(1, lambda prefix: open(prefix + ".index", "w").close(),
                        {"batches_consumed": 1})
  mngr.save(1, _wide_state(1.0), {"step": 1, "batches_consumed": 1})
  mngr.close()
  proc = run_python(_FIRST_SAVE_FAILS.format(model_dir=str(tmp_path), async_save=async_save))
  lines = proc.stderr.strip().splitlines()
  assert lines and all(word not in proc.stderr for word in (
      "Traceback", "Event loop is closed", "never retrieved", "ERROR")), proc.stderr[-3000:]
  assert re.fullmatch(
      rf"flanjax train: error: could not save checkpoint step 2 in {re.escape(str(tmp_path))} "
      r"\(ValueError: \w+: .*File too large.*\); the earlier checkpoints are intact \(the "
      r"latest is step 1\)\. Fix the cause and rerun the same command to resume\.",
      lines[-1]), proc.stderr[-3000:]
  assert sorted(os.listdir(tmp_path)) == ["1", "data_state"]
  assert os.listdir(tmp_path / "data_state") == ["1"]
  # The resume: from step 1, whose step 2 saves this time.
  mngr = checkpoints.TrainCheckpointManager(tmp_path, save_period=1, async_save=async_save)
  assert mngr.latest_step() == 1
  abstract = jax.eval_shape(lambda: _wide_state(0.0))
  rep = NamedSharding(partitioning.make_mesh((1, 1)), P())
  state, meta = mngr.restore(1, abstract, jax.tree.map(lambda _: rep, abstract))
  assert meta == {"step": 1, "batches_consumed": 1}
  np.testing.assert_array_equal(state.params["w19"], np.full((10,), 20.0))
  mngr.write_data_state(2, lambda prefix: open(prefix + ".index", "w").close(),
                        {"batches_consumed": 2})
  mngr.save(2, _wide_state(2.0), {"step": 2, "batches_consumed": 2})
  mngr.close()
  assert checkpoints.finalized_steps(tmp_path, checkpoints.TRAIN_ITEMS) == [1, 2]


def test_orbax_plain_exception_reading_an_array_is_an_unreadable_step(tmp_path, monkeypatch):
  """Orbax raises a plain Exception for an array it cannot read (a damaged data file): that is a
  damaged step, named as such; any other exception type (a bug) is not hidden behind it."""
  def damaged(*args, **kwargs):
    raise Exception("Encountered error while reading array index: (slice(0, 64, 1),)")  # noqa: TRY002
  monkeypatch.setattr(checkpoints, "_restore_params", damaged)
  with pytest.raises(FlanjaxError, match=r"checkpoint step 3 in .* is unreadable \(Exception: "
                                         r"Encountered error while reading array index"):
    checkpoints.restore_params(str(tmp_path), 3)

  def bug(*args, **kwargs):
    raise RuntimeError("a bug")
  monkeypatch.setattr(checkpoints, "_restore_params", bug)
  with pytest.raises(RuntimeError, match="a bug"):
    checkpoints.restore_params(str(tmp_path), 3)


def test_a_sharding_the_mesh_cannot_hold_is_not_an_unreadable_step(tmp_path, monkeypatch):
  """A restore onto shardings whose mesh axis does not divide a dimension fails with jax's
  IndivisibleError (a ValueError): that is not the step's data, so it is not reported as a
  damaged step to move aside."""
  from jax._src.sharding import IndivisibleError  # the type jax raises (private path)

  def indivisible(*args, **kwargs):
    raise IndivisibleError("Sharding ... but the dimension size is 6 (full shape: (6, 32))")
  monkeypatch.setattr(checkpoints, "_restore_params", indivisible)
  with pytest.raises(IndivisibleError):
    checkpoints.restore_params(str(tmp_path), 3)


def test_listings_take_a_folder_that_vanishes_for_an_empty_one(tmp_path, monkeypatch):
  """In a multi-process run another process's writability probe makes a missing model_dir and
  removes it again; a listing that saw it exist and then finds it gone lists nothing (it raised
  FileNotFoundError on process 1 of a 2-process `flanjax train`)."""
  gone = str(tmp_path / "model")
  real_listdir = os.listdir

  def listdir(path):
    if os.fspath(path) == gone:
      raise FileNotFoundError(2, "No such file or directory", gone)
    return real_listdir(path)

  real_isdir = os.path.isdir
  monkeypatch.setattr(os.path, "isdir", lambda path: os.fspath(path) == gone or real_isdir(path))
  monkeypatch.setattr(os, "listdir", listdir)
  assert checkpoints.finalized_steps(gone) == []
  assert checkpoints.foreign_entries(gone) == []
  assert checkpoints.incomplete_steps(gone) == {}
  assert checkpoints.set_aside_incomplete_steps(gone) == []


def test_a_data_state_another_process_cannot_save_is_dropped_on_every_process(tmp_path,
                                                                              monkeypatch):
  """Whether tf.data can serialise an iterator may differ between processes (a Python function
  in the pipeline): the processes agree, so none waits for another in a collective, and none
  keeps a state of that step (process 1 of 2 could not save; this process could)."""
  manager = checkpoints.TrainCheckpointManager(str(tmp_path), async_save=False)
  # This process wrote its state (status 0); process 1 could not serialise its iterator (2).
  monkeypatch.setattr(checkpoints, "_process_statuses", lambda status: [status, 2])

  def save(prefix):
    with open(prefix + ".index", "w") as f:
      f.write("a complete state")
  with pytest.raises(checkpoints.UnsaveableDataState, match="process 1's data iterator"):
    manager.write_data_state(2, save, {"batches_consumed": 2})
  assert not os.path.exists(tmp_path / "data_state" / "2")
  assert manager.read_data_state(2) is None
  manager.close()
