"""Checkpoint conversion: HF import/export (parity with transformers), T5X import, the CLI."""
import errno
import json
import os
import re
import sys
import tempfile
import threading
import types

import jax
import numpy as np
import pytest

from flanjax import convert
from flanjax import model as M
from flanjax.config import get_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = 131  # >= the ids of the test SentencePiece model (spm_model) + T5's 100 extra ids


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory):
  """A tiny real SentencePiece model (24 pieces), trained here."""
  import io

  import sentencepiece
  out = io.BytesIO()
  sentencepiece.SentencePieceTrainer.train(
      sentence_iterator=iter(["hello world", "a tiny test", "the model reads text"] * 20),
      model_writer=out, vocab_size=31, hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2,
      bos_id=-1, minloglevel=2)
  path = tmp_path_factory.mktemp("spm") / "spiece.model"
  path.write_bytes(out.getvalue())
  return path


def _add_vocab(hf_dir, spm_model):
  (hf_dir / "spiece.model").write_bytes(spm_model.read_bytes())


def _hf_model(v11: bool, seed=0):
  torch.manual_seed(seed)
  cfg = transformers.T5Config(
      vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=40, num_layers=2, num_decoder_layers=2,
      num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
      dropout_rate=0.0, feed_forward_proj="gated-gelu" if v11 else "relu",
      tie_word_embeddings=not v11, decoder_start_token_id=0)
  m = transformers.T5ForConditionalGeneration(cfg).eval()
  with torch.no_grad():
    for p in m.parameters():
      p.add_(0.05 * torch.randn_like(p))
    if v11:
      m.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, 32) * 0.2)
  return m


def _inputs():
  rng = np.random.default_rng(0)
  enc = rng.integers(2, VOCAB, size=(2, 7)).astype(np.int32)
  enc[1, 4:] = 0
  dec = rng.integers(2, VOCAB, size=(2, 5)).astype(np.int32)
  dec[:, 0] = 0
  return enc, dec


def _hf_logits(m, enc, dec):
  with torch.no_grad():
    return m(input_ids=torch.tensor(enc, dtype=torch.long),
             attention_mask=torch.tensor(enc > 0, dtype=torch.long),
             decoder_input_ids=torch.tensor(dec, dtype=torch.long)).logits.numpy()


def _assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


@pytest.mark.parametrize("v11", [True, False])
def test_hf_import_export_roundtrip(tmp_path, v11):
  m = _hf_model(v11)
  m.save_pretrained(tmp_path / "hf")
  config, params = convert.load_hf(tmp_path / "hf")
  assert config.gated == v11 and config.tie_word_embeddings == (not v11)
  assert config.head_dim == 8 and config.relative_attention_max_distance == 20
  enc, dec = _inputs()
  ref = _hf_logits(m, enc, dec)
  got = M.T5(config.replace(dtype="float32")).apply({"params": params}, enc, dec)
  assert np.max(np.abs(np.asarray(got) - ref)) <= 1e-4
  # Export -> import is exact, and transformers loads the export with the same logits.
  convert.save_hf(tmp_path / "out", config, params)
  config2, params2 = convert.load_hf(tmp_path / "out")
  assert config2 == config
  _assert_trees_equal(params2, params)
  m2 = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
  assert np.max(np.abs(_hf_logits(m2, enc, dec) - ref)) <= 1e-5
  with pytest.raises(convert.ConvertError, match="never overwrites"):
    convert.save_hf(tmp_path / "out", config, params)


def test_hf_sharded_safetensors_and_torch_bin(tmp_path):
  m = _hf_model(True, seed=1)
  m.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
  assert os.path.exists(tmp_path / "sharded" / convert.SAFETENSORS_INDEX)
  config, params = convert.load_hf(tmp_path / "sharded")
  # pytorch_model.bin (read with weights_only=True)
  os.makedirs(tmp_path / "bin")
  (tmp_path / "bin" / "config.json").write_text((tmp_path / "sharded" / "config.json").read_text())
  torch.save(m.state_dict(), tmp_path / "bin" / convert.TORCH_BIN)
  config_b, params_b = convert.load_hf(tmp_path / "bin")
  assert config_b == config
  _assert_trees_equal(params_b, params)


def test_mismatch_errors_list_parameters_and_suggest_size(tmp_path):
  config = get_config("tiny", vocab_size=VOCAB)
  params = jax.tree.map(np.asarray, M.init_params(config, jax.random.PRNGKey(0)))
  wrong = get_config("small", vocab_size=VOCAB)
  with pytest.raises(convert.ConvertError) as e:
    convert.check_shapes(wrong, params)
  msg = str(e.value)
  assert f"token_embedder/embedding: shape ({VOCAB}, 64), expected ({VOCAB}, 512)" in msg
  assert "mismatches" in msg and "more" in msg
  assert msg.endswith(" more\nThe weights look like T5 v1.1 tiny (d_model 64, d_ff 128, 4 heads, "
                      f"2/2 layers, gated-gelu): flanjax's config for it is get_config('tiny', "
                      f"vocab_size={VOCAB}) or --gin_file=models/t5_1_1_tiny.gin.")
  with pytest.raises(convert.ConvertError, match="no config.json"):
    convert.load_hf(tmp_path)
  (tmp_path / "flanjax_model.json").write_text("{}")  # --from-hf given a flanjax checkpoint
  with pytest.raises(convert.ConvertError, match="is a flanjax checkpoint, not a Hugging Face "
                                                 "model: convert it with --from"):
    convert.load_hf(tmp_path)
  (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
  with pytest.raises(convert.ConvertError, match="model.safetensors"):
    convert.read_hf_state(str(tmp_path))
  # A config.json that is not a T5's: one line, not a KeyError traceback.
  with pytest.raises(convert.ConvertError, match=r"^HF config has no vocab_size, d_model, d_ff, "
                                                 r"num_heads, d_kv, num_layers: not a T5"):
    convert.config_from_hf({"model_type": "t5"})
  with pytest.raises(convert.ConvertError, match=r"^HF config model_type='bert' is not a T5"):
    convert.config_from_hf({"model_type": "bert", "vocab_size": 8})


def test_an_unscaled_model_saved_without_lm_head_imports_exactly(tmp_path):
  """transformers 5 saves a T5 v1.1 model made from scratch (tie_word_embeddings=False: output
  layer not scaled) with its output layer tied to the embedding and no lm_head.weight: it
  imports as an untied flanjax model whose output kernel is the embedding, with HF's logits."""
  torch.manual_seed(0)
  cfg = transformers.T5Config(
      vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=40, num_layers=2, num_heads=4,
      relative_attention_num_buckets=8, relative_attention_max_distance=20, dropout_rate=0.0,
      feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0)
  m = transformers.T5ForConditionalGeneration(cfg).eval()
  with torch.no_grad():
    for p in m.parameters():
      p.add_(0.05 * torch.randn_like(p))
  m.save_pretrained(tmp_path / "hf")
  state = convert.read_hf_state(str(tmp_path / "hf"))
  assert "lm_head.weight" not in state  # as transformers 5 saves it
  config, params = convert.load_hf(tmp_path / "hf")
  assert config.gated and not config.tie_word_embeddings
  np.testing.assert_array_equal(params["decoder"]["logits_dense"]["kernel"],
                                params["token_embedder"]["embedding"].T)
  enc, dec = _inputs()
  got = M.T5(config.replace(dtype="float32")).apply({"params": params}, enc, dec)
  assert np.max(np.abs(np.asarray(got) - _hf_logits(m, enc, dec))) <= 1e-4
  # Weights that lack more than the output layer: the general message.
  del state["shared.weight"]
  with pytest.raises(convert.ConvertError, match=r"^The HF checkpoint lacks 2 parameters the "
                     r"config needs, e.g. \['shared.weight', 'lm_head.weight'\]"):
    convert.params_from_hf_state(config, state)


def _write_t5x(ckpt_dir, params, inline=("encoder/encoder_norm/scale",)):
  """Writes `params` in T5X's layout: `checkpoint` msgpack + TensorStore zarr arrays."""
  import tensorstore as ts
  from flax import serialization
  os.makedirs(ckpt_dir)
  flat = {"/".join(k): v for k, v in convert._flatten(params).items()}
  target = {}
  for name, arr in flat.items():
    arr = np.asarray(arr)
    if name in inline:
      leaf = arr
    else:
      # Store the big matrices in bfloat16 as the published checkpoints partly do.
      dtype = "bfloat16" if name.endswith("kernel") and "query" in name else "float32"
      rel = f"target.{name.replace('/', '.')}"
      spec = {"driver": "zarr", "dtype": dtype,
              "kvstore": {"driver": "file", "path": rel},
              "metadata": {"shape": list(arr.shape), "chunks": list(arr.shape),
                           "compressor": {"id": "gzip"}}}
      abs_spec = json.loads(json.dumps(spec))
      abs_spec["kvstore"]["path"] = os.path.join(ckpt_dir, rel)
      store = ts.open(abs_spec, create=True).result()
      store.write(arr.astype(jax.numpy.bfloat16) if dtype == "bfloat16" else arr).result()
      leaf = spec
    convert._set(target, tuple(name.split("/")), leaf)
  state = {"optimizer": {"target": target,
                         "state": {"step": np.int32(1184000), "param_states": {}}}}
  with open(os.path.join(ckpt_dir, "checkpoint"), "wb") as f:
    f.write(serialization.msgpack_serialize(state))


def test_t5x_import(tmp_path):
  config = get_config("tiny", vocab_size=VOCAB, num_decoder_layers=3)
  params = jax.tree.map(np.asarray, M.init_params(config, jax.random.PRNGKey(1)))
  _write_t5x(str(tmp_path / "checkpoint_1184000"), params)
  got_config, got = convert.load_t5x(tmp_path / "checkpoint_1184000")
  assert got_config == config.replace(dropout_rate=got_config.dropout_rate)
  # Query kernels were stored in bfloat16: expect their bfloat16 rounding.
  expect = jax.tree.map(lambda x: x, params)
  for stack, attn in (("encoder", "attention"), ("decoder", "self_attention"),
                      ("decoder", "encoder_decoder_attention")):
    n = config.num_encoder_layers if stack == "encoder" else config.num_decoder_layers
    for i in range(n):
      path = (stack, f"layers_{i}", attn, "query", "kernel")
      convert._set(expect, path, np.asarray(convert._get(params, path)).astype(
          jax.numpy.bfloat16).astype(np.float32))
  _assert_trees_equal(got, expect)
  with pytest.raises(convert.ConvertError, match=r"\nThe weights look like a model with d_model "
                     r"64, d_ff 128, 4 heads, 2/3 layers, gated-gelu: omit --size \(the model "
                     r"is then inferred from the shapes\)\.$"):
    convert.load_t5x(tmp_path / "checkpoint_1184000", size="base")
  with pytest.raises(convert.ConvertError, match="no `checkpoint` file"):
    convert.load_t5x(tmp_path)


# T5X's parameter names for a gated T5.1.1 of 1 + 1 layers, as t5x/examples/t5/network.py and
# layers.py name them (written out here: the import fixture above writes flanjax's own tree).
T5X_NAMES = {
    "token_embedder/embedding", "encoder/relpos_bias/rel_embedding", "encoder/encoder_norm/scale",
    "encoder/layers_0/pre_attention_layer_norm/scale", "encoder/layers_0/pre_mlp_layer_norm/scale",
    *(f"encoder/layers_0/attention/{p}/kernel" for p in ("query", "key", "value", "out")),
    *(f"{stack}/layers_0/mlp/{p}/kernel" for stack in ("encoder", "decoder")
      for p in ("wi_0", "wi_1", "wo")),
    "decoder/relpos_bias/rel_embedding", "decoder/decoder_norm/scale",
    "decoder/logits_dense/kernel",
    *(f"decoder/layers_0/{norm}/scale" for norm in (
        "pre_self_attention_layer_norm", "pre_cross_attention_layer_norm", "pre_mlp_layer_norm")),
    *(f"decoder/layers_0/{attn}/{p}/kernel" for attn in ("self_attention",
                                                         "encoder_decoder_attention")
      for p in ("query", "key", "value", "out")),
}


def test_t5x_names_are_t5xs():
  """`load_t5x` keeps T5X's names: flanjax's parameter tree must be T5X's, name for name."""
  config = get_config("tiny", vocab_size=VOCAB, num_encoder_layers=1, num_decoder_layers=1)
  names = {"/".join(k) for k in convert._flatten(M.param_shapes(config))}
  assert names == T5X_NAMES


def test_cli_roundtrip(tmp_path, capsys, spm_model):
  from flanjax import checkpoints
  m = _hf_model(True, seed=2)
  m.save_pretrained(tmp_path / "hf")
  _add_vocab(tmp_path / "hf", spm_model)
  assert convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "ckpt")]) == 0
  config, params, vocab = checkpoints.load_pretrained(str(tmp_path / "ckpt"))
  ref_config, ref_params = convert.load_hf(tmp_path / "hf")
  assert config == ref_config
  assert vocab["path"] == str(tmp_path / "ckpt" / "spiece.model")  # copied: self-contained
  # Recorded relative to the checkpoint (a copied folder keeps it), with T5's 100 sentinel ids
  # (every T5 task's vocabulary has them: a fine-tuning resume compares the two).
  import json
  assert json.load(open(tmp_path / "ckpt" / "flanjax_model.json"))["vocabulary"] == {
      "type": "sentencepiece", "file": "spiece.model", "extra_ids": 100}
  _assert_trees_equal(params, ref_params)
  assert convert.main(["--from", str(tmp_path / "ckpt"), "--to-hf", str(tmp_path / "out")]) == 0
  assert os.path.exists(tmp_path / "out" / "spiece.model")
  m2 = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
  enc, dec = _inputs()
  np.testing.assert_array_equal(_hf_logits(m2, enc, dec), _hf_logits(m, enc, dec))
  # T5X -> flanjax through the CLI.
  _write_t5x(str(tmp_path / "t5x" / "checkpoint_5"), jax.tree.map(np.asarray, ref_params))
  assert convert.main(["--from-t5x", str(tmp_path / "t5x" / "checkpoint_5"),
                       "--to", str(tmp_path / "ckpt2")]) == 0
  assert checkpoints.load_pretrained(str(tmp_path / "ckpt2"))[0].d_ff == 40
  capsys.readouterr()
  with pytest.raises(SystemExit) as e:
    convert.main(["--from-hf", "x", "--from-t5x", "y", "--to", "z"])
  assert e.value.code == 2
  assert capsys.readouterr().err == ("flanjax convert: error: argument --from-t5x: not allowed "
                                     "with argument --from-hf. Run 'flanjax convert --help' for "
                                     "the flags.\n")


def test_cli_refuses_a_non_empty_destination_before_writing(tmp_path, spm_model):
  from flanjax import checkpoints
  m = _hf_model(True, seed=3)
  m.save_pretrained(tmp_path / "hf")
  _add_vocab(tmp_path / "hf", spm_model)
  run = tmp_path / "run"
  run.mkdir()
  (run / "metrics.jsonl").write_text("{}\n")
  with pytest.raises(convert.ConvertError, match=r"--to .*run already exists and is not empty"):
    convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(run)])
  assert sorted(os.listdir(run)) == ["metrics.jsonl"]  # nothing written (no spiece.model copy)
  (tmp_path / "empty").mkdir()
  assert convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "empty")]) == 0
  info = json.load(open(tmp_path / "empty" / "flanjax_model.json"))
  with pytest.raises(convert.ConvertError, match="not empty"):
    convert.main(["--from", str(tmp_path / "empty"), "--to", str(tmp_path / "empty")])
  assert json.load(open(tmp_path / "empty" / "flanjax_model.json")) == info
  assert checkpoints.finalized_steps(tmp_path / "empty") == [0]


def _hf_dir_snapshot(path):
  return {name: (path / name).read_bytes() for name in sorted(os.listdir(path))}


def test_to_hf_refuses_an_existing_hf_model_dir_before_writing(tmp_path, spm_model):
  """A sharded HF model (+ pytorch_model.bin, spiece.model) is never overwritten or added to."""
  m = _hf_model(True, seed=4)
  m.save_pretrained(tmp_path / "hf")
  _add_vocab(tmp_path / "hf", spm_model)
  old_umask = os.umask(0o022)
  try:
    assert convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "ckpt")]) == 0
  finally:
    os.umask(old_umask)
  # Readable by colleagues on shared storage (atomic_write used to leave it 0600).
  assert os.stat(tmp_path / "ckpt" / "flanjax_model.json").st_mode & 0o777 == 0o644
  target = tmp_path / "existing_hf"
  m.save_pretrained(target, max_shard_size="20KB")
  torch.save(m.state_dict(), target / convert.TORCH_BIN)
  (target / "spiece.model").write_bytes(b"the original vocabulary")
  assert os.path.exists(target / convert.SAFETENSORS_INDEX)
  assert not os.path.exists(target / convert.SAFETENSORS)
  before = _hf_dir_snapshot(target)
  with pytest.raises(convert.ConvertError,
                     match=r"--to-hf .*existing_hf already exists and is not empty \(holds "
                           r"config\.json, .*model-00001-of-.*never overwrites"):
    convert.main(["--from", str(tmp_path / "ckpt"), "--to-hf", str(target)])
  assert _hf_dir_snapshot(target) == before
  # The API refuses too, whatever the directory holds.
  config, params = convert.load_hf(tmp_path / "hf")
  only_config = tmp_path / "only_config"
  only_config.mkdir()
  (only_config / "config.json").write_text("{}")
  with pytest.raises(convert.ConvertError, match=r"only_config already exists .*config\.json"):
    convert.save_hf(only_config, config, params)
  assert os.listdir(only_config) == ["config.json"]
  (tmp_path / "a_file").write_text("x")
  with pytest.raises(convert.ConvertError, match="a_file is an existing file, not a directory"):
    convert.main(["--from", str(tmp_path / "ckpt"), "--to-hf", str(tmp_path / "a_file")])
  with pytest.raises(convert.ConvertError, match="--to .*a_file is an existing file"):
    convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "a_file")])
  # An empty directory is fine; a failed export leaves it empty so that a retry can proceed.
  (tmp_path / "empty").mkdir()
  with pytest.raises(convert.ConvertError, match=r"The vocabulary .*missing to export to .*empty "
                                                 "is not a file"):
    convert.save_hf(tmp_path / "empty", config, params, vocab_path=str(tmp_path / "missing"))
  assert os.listdir(tmp_path / "empty") == []
  assert convert.main(["--from", str(tmp_path / "ckpt"), "--to-hf", str(tmp_path / "empty")]) == 0
  assert sorted(os.listdir(tmp_path / "empty")) == ["config.json", convert.SAFETENSORS,
                                                    "spiece.model"]


def _no_space(*args, **kwargs):
  raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_leaves_the_target_as_it_was(tmp_path, monkeypatch, capsys,
                                                    spm_model):
  """A full disk mid-write: one ConvertError, and a missing target stays missing (with the
  folders above it that the run created), an empty one empty, so that a retry can proceed."""
  from safetensors import numpy as st_numpy

  from flanjax import checkpoints
  m = _hf_model(True, seed=5)
  m.save_pretrained(tmp_path / "hf")
  _add_vocab(tmp_path / "hf", spm_model)
  real_save_file = st_numpy.save_file

  def save_file_then_fail(state, path, metadata=None):
    real_save_file(state, path, metadata=metadata)  # a partial file is left, as on a full disk
    _no_space()

  monkeypatch.setattr(st_numpy, "save_file", save_file_then_fail)
  (tmp_path / "empty").mkdir()
  for target in (tmp_path / "new" / "nested" / "hf", tmp_path / "empty"):
    with pytest.raises(convert.ConvertError,
                       match=r"^Could not write --to-hf .*(nested.hf|empty) \(OSError: \[Errno "
                             r"28\] No space left on device\); the partial output was removed\. "
                             r"Free disk space and run the command again\.$"):
      convert.main(["--from-hf", str(tmp_path / "hf"), "--to-hf", str(target)])
  assert not os.path.exists(tmp_path / "new") and os.listdir(tmp_path / "empty") == []
  monkeypatch.undo()
  # --to: Orbax's (or TensorStore's) errors wrap the OSError, and some of its writes end after
  # the save failed: what they write is removed too, and their callbacks' errors are not printed.
  real_save_pretrained = checkpoints.save_pretrained
  hook = sys.unraisablehook
  late = threading.Event()

  def save_then_fail(ckpt_dir, *args, **kwargs):
    real_save_pretrained(ckpt_dir, *args, **kwargs)
    assert sorted(os.listdir(ckpt_dir)) == ["0", "flanjax_model.json", "spiece.model"]

    def late_write():
      os.makedirs(os.path.join(ckpt_dir, "0.orbax-checkpoint-tmp", "d"))
      (tmp_path / "late").mkdir()
      late.set()

    threading.Timer(0.1, late_write).start()
    sys.unraisablehook(types.SimpleNamespace(exc_value=RuntimeError("Event loop is closed")))
    raise ValueError("RESOURCE_EXHAUSTED: Error writing \"params\": Failed to write 6299648 "
                     "bytes: No space left on device [os_error_code='28']")

  monkeypatch.setattr(checkpoints, "save_pretrained", save_then_fail)
  for target in (tmp_path / "ckpt", tmp_path / "empty"):
    late.clear()
    with pytest.raises(convert.ConvertError,
                       match=r"^Could not write --to .*(ckpt|empty) \(ValueError: RESOURCE_EXH"
                             r"AUSTED: .*No space left on device .*\); the partial output was "
                             r"removed\. Free disk space"):
      convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(target)])
    assert late.is_set()
    (tmp_path / "late").rmdir()
  assert not os.path.exists(tmp_path / "ckpt") and os.listdir(tmp_path / "empty") == []
  assert sys.unraisablehook is hook and "Event loop" not in capsys.readouterr().err
  # A FlanjaxError raised while writing is cleaned up after too, and passes through unchanged.
  monkeypatch.setattr(checkpoints, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(
      checkpoints.CheckpointError("refused")))
  with pytest.raises(checkpoints.CheckpointError, match="^refused$"):
    convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "ckpt")])
  assert not os.path.exists(tmp_path / "ckpt")  # spiece.model was copied, and removed
  monkeypatch.undo()
  assert convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "empty")]) == 0


def test_an_unwritable_target_is_refused_before_reading_the_source(tmp_path, monkeypatch):
  """A read-only folder or a full disk: one ConvertError before any work, nothing created."""
  def read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")

  monkeypatch.setattr(tempfile, "mkstemp", read_only)
  (tmp_path / "empty").mkdir()
  # The probe goes in the target, or where its folders would be made (no folder is made).
  for flag, target, where in (("--to", tmp_path / "a" / "b", f" in {tmp_path}"),
                              ("--to-hf", tmp_path / "empty", "")):
    with pytest.raises(convert.ConvertError,
                       match=rf"^{flag} {re.escape(str(target))} is not writable \(Read-only file "
                             rf"system{re.escape(where)}\); choose a folder you can write to, on "
                             r"a disk with free space\.$"):
      # The source does not exist: the target is checked first.
      convert.main(["--from-hf", str(tmp_path / "no_such_model"), flag, str(target)])
  assert sorted(os.listdir(tmp_path)) == ["empty"] and os.listdir(tmp_path / "empty") == []
  monkeypatch.setattr(tempfile, "mkstemp", _no_space)
  with pytest.raises(convert.ConvertError, match=r"^convert target .*/hf is not writable \(No "
                                                 r"space left on device in "):
    convert.save_hf(tmp_path / "hf", get_config("tiny"), {})
  monkeypatch.undo()
  (tmp_path / "a_file").write_text("x")
  with pytest.raises(convert.ConvertError, match=r"^--to .*a_file/ckpt: .*a_file is a file, not "
                                                 "a folder"):
    convert.main(["--from-hf", "x", "--to", str(tmp_path / "a_file" / "ckpt")])


@pytest.mark.parametrize("umask", [0o002, 0o027])
def test_to_hf_files_get_the_mode_open_gives(tmp_path, umask, spm_model):
  """model.safetensors was 0600 (safetensors' temporary file) while config.json followed the
  umask: every exported file gets 0o666 less the umask, as open(path, "w") gives."""
  m = _hf_model(True, seed=6)
  m.save_pretrained(tmp_path / "hf")
  _add_vocab(tmp_path / "hf", spm_model)
  old_umask = os.umask(umask)
  try:
    assert convert.main(["--from-hf", str(tmp_path / "hf"), "--to-hf", str(tmp_path / "out")]) == 0
  finally:
    os.umask(old_umask)
  modes = {name: os.stat(tmp_path / "out" / name).st_mode & 0o777
           for name in os.listdir(tmp_path / "out")}
  assert modes == dict.fromkeys(["config.json", convert.SAFETENSORS, "spiece.model"],
                                0o666 & ~umask)


def test_hf_tensors_the_config_does_not_use_are_refused(tmp_path):
  """A config.json with fewer layers than the weights would load a truncated model."""
  m = _hf_model(True, seed=7)
  m.save_pretrained(tmp_path / "hf")
  cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
  (tmp_path / "hf" / "config.json").write_text(json.dumps({**cfg, "num_decoder_layers": 1}))
  with pytest.raises(convert.ConvertError, match=(
      r"^The HF checkpoint holds 14 tensors its config.json does not use, e.g. "
      r"\['decoder.block.1.layer.0.SelfAttention.k.weight', .*\]: config.json does not match "
      r"these weights")):
    convert.load_hf(tmp_path / "hf")


def _shapes_only(config):
  """Params of `config` as zero-size-in-memory arrays (broadcast views): only shapes matter."""
  return jax.tree.map(lambda s: np.broadcast_to(np.float32(0), s.shape),
                      M.param_shapes(config.replace(scan_layers=False)))


def test_size_hint_matches_every_dimension():
  v10_base = get_config("base", d_ff=3072, feed_forward_proj="relu", tie_word_embeddings=True)
  with pytest.raises(convert.ConvertError) as e:
    convert.check_shapes(get_config("base"), _shapes_only(v10_base))
  assert e.value.args[0].endswith(
      " more\nThe weights look like T5 v1.0 base (d_model 768, d_ff 3072, 12 heads, 12/12 "
      "layers, relu): give a config with these sizes.")  # no gin file for it
  v10_small = get_config("small", d_ff=2048, num_heads=8, num_encoder_layers=6,
                         num_decoder_layers=6, feed_forward_proj="relu", tie_word_embeddings=True)
  with pytest.raises(convert.ConvertError, match=r"\nThe weights look like T5 v1.0 small .*: "
                     r"flanjax's config for it is --gin_file=models/t5_1_0_small.gin\.$"):
    convert.check_shapes(get_config("small"), _shapes_only(v10_small))
  with pytest.raises(convert.ConvertError, match=r"T5 v1.0 small .*: omit --size"):
    convert.check_shapes(get_config("small"), _shapes_only(v10_small), size_flag=True)


def test_inline_bfloat16_t5x_leaves_are_read():
  from flax import serialization
  x = np.asarray([[0.5, -1.25, 3.0]], np.float32)
  leaf = serialization.msgpack_restore(serialization.msgpack_serialize(
      {"x": x.astype(jax.numpy.bfloat16)}))["x"]
  got = convert._read_t5x_leaf("/nonexistent", leaf, "target/x")
  assert got.dtype == np.float32
  np.testing.assert_array_equal(got, x)
  with pytest.raises(convert.ConvertError, match="target/y is neither an array"):
    convert._read_t5x_leaf("/nonexistent", "text", "target/y")


def test_cli_checks_the_vocabulary_and_warns_without_one(tmp_path, capsys, spm_model):
  from flanjax import checkpoints
  m = _hf_model(True, seed=8)
  m.save_pretrained(tmp_path / "hf")
  # A vocabulary with more pieces than the model has ids (796 > 131), or not a SentencePiece
  # model: refused before anything is written.
  big = checkpoints.BUILTIN_VOCABULARIES["offline"]
  with pytest.raises(convert.ConvertError, match=(
      rf"^--vocab {big} has 796 pieces but the model has vocab_size=131, so it is not the "
      r"model's vocabulary; pass --vocab PATH")):
    convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "a"), "--vocab", big])
  (tmp_path / "hf" / "spiece.model").write_bytes(b"not a sentencepiece model")
  with pytest.raises(convert.ConvertError, match=r"^The vocabulary .*hf/spiece.model is not a "
                                                 r"SentencePiece model \("):
    convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "a")])
  assert not os.path.exists(tmp_path / "a")
  # No vocabulary at all: converted, with a warning saying how to record one.
  os.remove(tmp_path / "hf" / "spiece.model")
  capsys.readouterr()
  assert convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "a")]) == 0
  err = capsys.readouterr().err
  assert err == (f"flanjax convert: warning: {tmp_path}/hf has no spiece.model, so "
                 f"{tmp_path}/a will have none and `flanjax infer` cannot encode text for it; "
                 "pass --vocab PATH (the model's spiece.model).\n")
  # The fix the warning (and infer) names: convert again with --vocab.
  assert convert.main(["--from", str(tmp_path / "a"), "--to", str(tmp_path / "b"),
                       "--vocab", str(spm_model)]) == 0
  recorded = checkpoints.load_pretrained(str(tmp_path / "b"))[2]["path"]
  assert open(recorded, "rb").read() == spm_model.read_bytes()
  assert "warning" not in capsys.readouterr().err


def _save_small_v11(path, vocab_size: int):
  """A 1+1-layer random HF T5 v1.1 of `vocab_size` ids (room for the offline vocabulary's 796
  pieces), saved at `path`."""
  torch.manual_seed(0)
  cfg = transformers.T5Config(
      vocab_size=vocab_size, d_model=16, d_kv=4, d_ff=24, num_layers=1, num_decoder_layers=1,
      num_heads=2, relative_attention_num_buckets=8, relative_attention_max_distance=20,
      dropout_rate=0.0, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
      decoder_start_token_id=0)
  transformers.T5ForConditionalGeneration(cfg).save_pretrained(path)


def test_convert_records_flanjaxs_packaged_vocabulary_by_name_without_a_copy(tmp_path):
  """A model whose SentencePiece model is flanjax's packaged one (an export of a model trained
  on the offline collection) is recorded by name; no spiece.model copy is written beside it."""
  import json

  from flanjax import vocab
  _save_small_v11(tmp_path / "hf", vocab_size=896)
  assert convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "ckpt"),
                       "--vocab", vocab.OFFLINE_SPM_PATH]) == 0
  assert json.load(open(tmp_path / "ckpt" / "flanjax_model.json"))["vocabulary"] == {
      "type": "sentencepiece", "builtin": "offline", "extra_ids": 100}
  assert not os.path.exists(tmp_path / "ckpt" / "spiece.model")


def test_the_original_t5_checkpoints_unused_cross_attention_bias_is_tolerated(tmp_path):
  """t5-small/base/large on the Hub hold a relative bias in the decoder's first cross-attention
  that T5 never uses (transformers ignores it on load): they import as before."""
  from safetensors.numpy import load_file, save_file
  m = _hf_model(False, seed=8)
  m.save_pretrained(tmp_path / "hf")
  path = next(p for p in (tmp_path / "hf").iterdir() if p.suffix == ".safetensors")
  state = load_file(str(path))
  state["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = np.zeros(
      (8, 4), np.float32)
  save_file(state, str(path), metadata={"format": "pt"})
  config, params = convert.load_hf(tmp_path / "hf")
  enc, dec = _inputs()
  got = M.T5(config.replace(dtype="float32")).apply({"params": params}, enc, dec)
  assert np.max(np.abs(np.asarray(got) - _hf_logits(m, enc, dec))) <= 1e-4


def test_convert_from_a_checkpoint_keeps_its_byte_vocabulary(tmp_path, capsys):
  import json

  from test_evaluation import save_tiny_checkpoint
  save_tiny_checkpoint(str(tmp_path / "src"))
  assert convert.main(["--from", str(tmp_path / "src"), "--to", str(tmp_path / "dst")]) == 0
  assert json.load(open(tmp_path / "dst" / "flanjax_model.json"))["vocabulary"] == {
      "type": "byte", "extra_ids": 0}
  out, err = capsys.readouterr()
  assert "vocabulary: byte; it computes in float32: T5Config.dtype in flanjax_model.json)" in out
  assert "warning" not in err


def test_a_model_cut_to_its_tokenizer_records_the_extra_ids_it_has_room_for(tmp_path, capsys):
  """An embedding of exactly the tokenizer's pieces plus a few rows (no room for T5's 100
  sentinels): converted, recording the extra ids that fit, with a note."""
  import json

  from flanjax import vocab
  _save_small_v11(tmp_path / "hf", vocab_size=800)
  assert convert.main(["--from-hf", str(tmp_path / "hf"), "--to", str(tmp_path / "ckpt"),
                       "--vocab", vocab.OFFLINE_SPM_PATH]) == 0
  assert json.load(open(tmp_path / "ckpt" / "flanjax_model.json"))["vocabulary"]["extra_ids"] == 4
  assert "leaves room for 4 of T5's 100 extra ids after the 796 pieces" in capsys.readouterr().err
