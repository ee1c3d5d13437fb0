"""flanjax checkpoints: save/load_pretrained, the training manager, atomicity, errors."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from flanjax import checkpoints, partitioning
from flanjax.config import get_config
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
  with pytest.raises(checkpoints.CheckpointError, match=r"no checkpoint at step 3; available: "
                                                        r"\[5\]"):
    checkpoints.load_pretrained(tmp_path, step=3)


def test_load_errors(tmp_path):
  with pytest.raises(checkpoints.CheckpointError, match="does not exist"):
    checkpoints.load_pretrained(tmp_path / "nope")
  with pytest.raises(checkpoints.CheckpointError, match="flanjax_model.json is missing.*convert"):
    checkpoints.load_pretrained(tmp_path)
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
