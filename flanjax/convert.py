"""Checkpoint conversion: Hugging Face T5 / Flan-T5 and T5X checkpoints to and from flanjax.

  flanjax convert --from-hf DIR  --to CKPT_DIR [--vocab spiece.model]
  flanjax convert --from-t5x DIR --to CKPT_DIR [--vocab spiece.model] [--size base]
  flanjax convert --from CKPT_DIR --to-hf DIR

Never unpickles: safetensors first; `pytorch_model.bin` only via `torch.load(weights_only=True)`.
No TensorFlow here; torch is needed only for `.bin` checkpoints.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import stat
import sys
import time
from typing import Any

import jax
import numpy as np

from flanjax.config import SIZES, T5Config, get_config
from flanjax.errors import FlanjaxError, summary
from flanjax.files import check_writable_dir, missing_folders

log = logging.getLogger(__name__)

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"
VOCAB_FILES = ("spiece.model", "sentencepiece.model")


class ConvertError(FlanjaxError):
  """A checkpoint that cannot be converted (missing files, mismatched names or shapes)."""


# --------------------------------------------------------------------------- configs


_HF_REQUIRED = ("vocab_size", "d_model", "d_ff", "num_heads", "d_kv", "num_layers")


def config_from_hf(hf: dict[str, Any], **overrides) -> T5Config:
  """Maps a Hugging Face T5 config.json dict to a `T5Config`."""
  kind = hf.get("model_type", "t5")
  if kind != "t5":
    raise ConvertError(f"HF config model_type={kind!r} is not a T5: flanjax converts T5 v1.0, "
                       "T5 v1.1 and Flan-T5 checkpoints (model_type 't5').")
  missing = [k for k in _HF_REQUIRED if k not in hf]
  if missing:
    raise ConvertError(f"HF config has no {', '.join(missing)}: not a T5 config.json (a T5 / "
                       "Flan-T5 one names vocab_size, d_model, d_ff, num_heads, d_kv and "
                       "num_layers).")
  ff = hf.get("feed_forward_proj", "relu")
  if ff not in ("gated-gelu", "relu"):
    raise ConvertError(f"HF config feed_forward_proj={ff!r} is not supported: flanjax has "
                       "'gated-gelu' (T5 v1.1 / Flan-T5) and 'relu' (T5 v1.0).")
  # transformers 5 writes `scale_decoder_outputs` (and always tie_word_embeddings=true); older
  # versions use tie_word_embeddings (default true) for both the tying and the output rescale.
  tied = hf.get("scale_decoder_outputs", hf.get("tie_word_embeddings", True))
  eos = hf.get("eos_token_id", 1)
  if isinstance(eos, list):
    eos = eos[0]
  fields = dict(
      vocab_size=hf["vocab_size"], d_model=hf["d_model"], d_ff=hf["d_ff"],
      num_heads=hf["num_heads"], head_dim=hf["d_kv"], num_encoder_layers=hf["num_layers"],
      num_decoder_layers=hf.get("num_decoder_layers") or hf["num_layers"],
      relative_attention_num_buckets=hf.get("relative_attention_num_buckets", 32),
      relative_attention_max_distance=hf.get("relative_attention_max_distance", 128),
      dropout_rate=hf.get("dropout_rate", 0.1),
      layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-6), feed_forward_proj=ff,
      tie_word_embeddings=bool(tied), pad_token_id=hf.get("pad_token_id", 0) or 0,
      eos_token_id=eos, decoder_start_token_id=hf.get("decoder_start_token_id", 0) or 0)
  fields.update(overrides)
  return T5Config(**fields)


def config_to_hf(config: T5Config) -> dict[str, Any]:
  """A Hugging Face config.json dict for `config` (loads in transformers 4.x and 5.x)."""
  gated = config.gated
  return {
      "architectures": ["T5ForConditionalGeneration"], "model_type": "t5",
      "vocab_size": config.vocab_size, "d_model": config.d_model, "d_kv": config.head_dim,
      "d_ff": config.d_ff, "num_layers": config.num_encoder_layers,
      "num_decoder_layers": config.num_decoder_layers, "num_heads": config.num_heads,
      "relative_attention_num_buckets": config.relative_attention_num_buckets,
      "relative_attention_max_distance": config.relative_attention_max_distance,
      "dropout_rate": config.dropout_rate, "layer_norm_epsilon": config.layer_norm_epsilon,
      "initializer_factor": 1.0, "feed_forward_proj": config.feed_forward_proj,
      "dense_act_fn": "gelu_new" if gated else "relu", "is_gated_act": gated,
      "tie_word_embeddings": config.tie_word_embeddings,
      "scale_decoder_outputs": config.tie_word_embeddings,
      "is_encoder_decoder": True, "use_cache": True, "pad_token_id": config.pad_token_id,
      "eos_token_id": config.eos_token_id,
      "decoder_start_token_id": config.decoder_start_token_id,
  }


# --------------------------------------------------------------------------- name mapping


def _hf_names(config: T5Config) -> list[tuple[str, tuple[str, ...], bool]]:
  """(HF name, flanjax path, transpose) for every parameter of `config` (unscanned)."""
  out = [("shared.weight", ("token_embedder", "embedding"), False)]
  mlp = ("wi_0", "wi_1", "wo") if config.gated else ("wi", "wo")
  for stack, n in (("encoder", config.num_encoder_layers), ("decoder", config.num_decoder_layers)):
    out.append((f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                (stack, "relpos_bias", "rel_embedding"), True))
    for i in range(n):
      hb = f"{stack}.block.{i}.layer"
      fl = (stack, f"layers_{i}")
      if stack == "encoder":
        attn = [("0.SelfAttention", "attention", "0.layer_norm", "pre_attention_layer_norm")]
        ff_idx = 1
      else:
        attn = [("0.SelfAttention", "self_attention", "0.layer_norm",
                 "pre_self_attention_layer_norm"),
                ("1.EncDecAttention", "encoder_decoder_attention", "1.layer_norm",
                 "pre_cross_attention_layer_norm")]
        ff_idx = 2
      for h_attn, f_attn, h_ln, f_ln in attn:
        out.append((f"{hb}.{h_ln}.weight", fl + (f_ln, "scale"), False))
        for h_proj, f_proj in (("q", "query"), ("k", "key"), ("v", "value"), ("o", "out")):
          out.append((f"{hb}.{h_attn}.{h_proj}.weight", fl + (f_attn, f_proj, "kernel"), True))
      out.append((f"{hb}.{ff_idx}.layer_norm.weight", fl + ("pre_mlp_layer_norm", "scale"), False))
      for w in mlp:
        out.append((f"{hb}.{ff_idx}.DenseReluDense.{w}.weight", fl + ("mlp", w, "kernel"), True))
    out.append((f"{stack}.final_layer_norm.weight", (stack, f"{stack}_norm", "scale"), False))
  if not config.tie_word_embeddings:
    out.append(("lm_head.weight", ("decoder", "logits_dense", "kernel"), True))
  return out


def _set(tree: dict, path: tuple[str, ...], value):
  for k in path[:-1]:
    tree = tree.setdefault(k, {})
  tree[path[-1]] = value


def _get(tree, path: tuple[str, ...]):
  for k in path:
    tree = tree[k]
  return tree


def _flatten(tree, prefix=()) -> dict[tuple[str, ...], Any]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flatten(v, prefix + (k,)))
    else:
      out[prefix + (k,)] = v
  return out


def params_from_hf_state(config: T5Config, state: dict[str, np.ndarray]) -> dict:
  """Maps a HF T5 state dict (name -> array) to flanjax params (float32 numpy, unscanned).

  An unscaled (T5 v1.1) config whose weights have no lm_head.weight is how transformers 5 saves
  such a model made from scratch: its output layer is the embedding, unscaled, and so is the
  imported `logits_dense` kernel (a copy: flanjax's v1.1 output layer is its own parameter).
  """
  names = _hf_names(config)
  if (not config.tie_word_embeddings and "lm_head.weight" not in state
      and "shared.weight" in state):
    log.info("The HF checkpoint has no lm_head.weight: its output layer is the embedding "
             "(an untied model saved by transformers 5).")
    state = {**state, "lm_head.weight": state["shared.weight"]}
  missing = [h for h, _, _ in names if h not in state]
  if missing:
    raise ConvertError(f"The HF checkpoint lacks {len(missing)} parameters the config needs, "
                       f"e.g. {missing[:5]}. Is config.json the one of these weights?")
  if (config.tie_word_embeddings and "lm_head.weight" in state
      and not np.array_equal(state["lm_head.weight"], state["shared.weight"])):
    raise ConvertError("config.json ties the output layer to the embedding (T5 v1.0) but the "
                       "checkpoint holds a separate lm_head.weight: set tie_word_embeddings="
                       "false in config.json (T5 v1.1 / Flan-T5).")
  # The embedding's copies in each stack (and a tied lm_head, equal to it: checked above), and
  # the relative bias that the original T5 v1.0 checkpoints (t5-small/base/large) hold in the
  # decoder's first cross-attention, which T5 never uses (transformers ignores it too).
  copies = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight",
            "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"}
  unused = sorted(set(state) - {h for h, _, _ in names} - copies)
  if unused:
    raise ConvertError(
        f"The HF checkpoint holds {len(unused)} tensors its config.json does not use, e.g. "
        f"{unused[:4]}: config.json does not match these weights (num_layers, "
        "num_decoder_layers?); use the config.json saved with them.")
  params: dict = {}
  for hf_name, path, transpose in names:
    x = np.asarray(state[hf_name], dtype=np.float32)
    _set(params, path, np.ascontiguousarray(x.T) if transpose else x)
  check_shapes(config, params, source="HF checkpoint")
  return params


def params_to_hf_state(config: T5Config, params) -> dict[str, np.ndarray]:
  """Maps flanjax params (unscanned or scanned) to a HF T5 state dict of float32 arrays."""
  from flanjax.model import unscan_params
  params = unscan_params(jax.tree.map(np.asarray, params), config)
  check_shapes(config, params, source="flanjax params")
  state = {}
  for hf_name, path, transpose in _hf_names(config):
    x = np.asarray(_get(params, path), dtype=np.float32)
    state[hf_name] = np.ascontiguousarray(x.T if transpose else x)
  return state


# T5 v1.0's sizes (Raffel et al. 2020; relu, tied output layer), to name what weights look like.
V1_0_SIZES = {
    "small": dict(d_model=512, d_ff=2048, num_heads=8, num_encoder_layers=6,
                  num_decoder_layers=6),
    "base": dict(d_model=768, d_ff=3072, num_heads=12, num_encoder_layers=12,
                 num_decoder_layers=12),
    "large": dict(d_model=1024, d_ff=4096, num_heads=16, num_encoder_layers=24,
                  num_decoder_layers=24),
}
_SIZE_FIELDS = ("d_model", "d_ff", "num_heads", "num_encoder_layers", "num_decoder_layers")


def _size_hint(params, size_flag: bool) -> str:
  """What model the weights' shapes describe, and how to get it (empty if not inferable)."""
  try:
    got = _config_from_shapes(params)
  except (FlanjaxError, KeyError, TypeError, ValueError, AttributeError):
    return ""
  dims = {f: getattr(got, f) for f in _SIZE_FIELDS}
  version, table = ("1_1", SIZES) if got.gated else ("1_0", V1_0_SIZES)
  size = next((n for n, fields in table.items()
               if all(fields.get(f) == dims[f] for f in _SIZE_FIELDS)), None)
  shape = (f"d_model {got.d_model}, d_ff {got.d_ff}, {got.num_heads} heads, "
           f"{got.num_encoder_layers}/{got.num_decoder_layers} layers, {got.feed_forward_proj}")
  what = f"T5 v{version.replace('_', '.')} {size} ({shape})" if size else f"a model with {shape}"
  if size_flag:
    fix = "omit --size (the model is then inferred from the shapes)"
  else:
    gin = f"t5_{version}_{size}.gin"
    gin = f"--gin_file=models/{gin}" if size and _gin_model_file(gin) else None
    python = (f"get_config({size!r}, vocab_size={got.vocab_size})" if size and got.gated
              else None)
    fix = (f"flanjax's config for it is {' or '.join(x for x in (python, gin) if x)}"
           if python or gin else "give a config with these sizes")
  return f"\nThe weights look like {what}: {fix}."


def _gin_model_file(name: str) -> bool:
  """Whether flanjax ships gin/models/`name`."""
  try:
    from flanjax import gin_config
    return os.path.isfile(os.path.join(gin_config.packaged_gin_dir(), "models", name))
  except FlanjaxError:
    return False


def check_shapes(config: T5Config, params, source: str = "checkpoint", size_flag: bool = False):
  """Raises ConvertError listing every parameter whose name or shape differs from `config`
  (`size_flag`: the config came from --size)."""
  from flanjax.model import param_shapes
  expected = _flatten(jax.tree.map(lambda s: s.shape, param_shapes(config.replace(
      scan_layers=False))))
  got = {k: tuple(np.shape(v)) for k, v in _flatten(params).items()}
  problems = []
  # Stack-level parameters (embedding, norms) first: they tell the size apart at a glance.
  for k in sorted(set(expected) | set(got), key=lambda k: (any("layers" in p for p in k), k)):
    name = "/".join(k)
    if k not in got:
      problems.append(f"  {name}: missing (expected {expected[k]})")
    elif k not in expected:
      problems.append(f"  {name}: unexpected {got[k]}")
    elif got[k] != tuple(expected[k]):
      problems.append(f"  {name}: shape {got[k]}, expected {tuple(expected[k])}")
  if problems:
    hint = _size_hint(params, size_flag)
    shown = problems[:20] + ([f"  ... and {len(problems) - 20} more"] if len(problems) > 20
                             else [])
    raise ConvertError(f"The {source} does not match the configured model "
                       f"({len(problems)} mismatches):\n" + "\n".join(shown) + hint)


# --------------------------------------------------------------------------- HF files


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
  from safetensors import safe_open
  out = {}
  # framework="flax" reads bfloat16 too (plain numpy has no bfloat16).
  with safe_open(path, framework="flax") as f:
    for k in f.keys():
      out[k] = np.asarray(f.get_tensor(k), dtype=np.float32)
  return out


def _read_torch_bin(path: str) -> dict[str, np.ndarray]:
  try:
    import torch
  except ImportError as e:
    raise ConvertError(f"{path} is a PyTorch checkpoint and torch is not installed: install "
                       "torch, or convert the checkpoint to safetensors.") from e
  state = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.float().numpy() for k, v in state.items()}


def read_hf_state(hf_dir: str) -> dict[str, np.ndarray]:
  """Reads a HF checkpoint's tensors (safetensors or .bin, sharded or not) as float32 numpy."""
  def shards(index_file):
    with open(os.path.join(hf_dir, index_file)) as f:
      files = sorted(set(json.load(f)["weight_map"].values()))
    return [os.path.join(hf_dir, name) for name in files]

  if os.path.exists(os.path.join(hf_dir, SAFETENSORS)):
    files, reader = [os.path.join(hf_dir, SAFETENSORS)], _read_safetensors
  elif os.path.exists(os.path.join(hf_dir, SAFETENSORS_INDEX)):
    files, reader = shards(SAFETENSORS_INDEX), _read_safetensors
  elif os.path.exists(os.path.join(hf_dir, TORCH_BIN)):
    files, reader = [os.path.join(hf_dir, TORCH_BIN)], _read_torch_bin
  elif os.path.exists(os.path.join(hf_dir, TORCH_BIN_INDEX)):
    files, reader = shards(TORCH_BIN_INDEX), _read_torch_bin
  else:
    raise ConvertError(f"{hf_dir} holds no {SAFETENSORS}, {SAFETENSORS_INDEX}, {TORCH_BIN} or "
                       f"{TORCH_BIN_INDEX}: is it a Hugging Face model directory?")
  state = {}
  for path in files:
    if not os.path.exists(path):
      raise ConvertError(f"Shard {path} listed in the index is missing.")
    state.update(reader(path))
  return state


def load_hf(hf_dir: str, **config_overrides) -> tuple[T5Config, dict]:
  """Imports a local HF T5 / Flan-T5 directory: returns (T5Config, float32 numpy params)."""
  config = hf_config(hf_dir, **config_overrides)
  return config, params_from_hf_state(config, read_hf_state(os.fspath(hf_dir)))


def hf_config(hf_dir: str, **config_overrides) -> T5Config:
  """The T5Config of a local HF T5 / Flan-T5 directory (its config.json)."""
  hf_dir = os.fspath(hf_dir)
  cfg_path = os.path.join(hf_dir, "config.json")
  if not os.path.exists(cfg_path):
    if os.path.exists(os.path.join(hf_dir, "flanjax_model.json")):
      raise ConvertError(f"{hf_dir} is a flanjax checkpoint, not a Hugging Face model: convert "
                         f"it with --from {hf_dir}, or use it as it is.")
    raise ConvertError(f"{hf_dir} has no config.json: pass the directory of a downloaded Hugging "
                       "Face model (e.g. google/flan-t5-base).")
  with open(cfg_path) as f:
    hf_cfg = json.load(f)
  try:
    return config_from_hf(hf_cfg, **config_overrides)
  except ConvertError as e:  # which file: a model folder holds several
    raise ConvertError(f"{cfg_path}: {e}") from None


def check_new_dir(path: str, flag: str = "") -> None:
  """Raises ConvertError unless `path` is missing or an empty directory (never overwrite) that
  files can be written in (`check_writable_dir`: a probe file in it or, when it is missing,
  in its nearest existing parent), so a read-only or full disk fails before any work and without
  leaving anything behind."""
  what = f"{flag} {path}" if flag else str(path)
  if os.path.lexists(path):
    if not os.path.isdir(path):
      raise ConvertError(f"{what} is an existing file, not a directory; give a new (or empty) "
                         "directory (flanjax convert never overwrites a checkpoint).")
    names = sorted(os.listdir(path))
    if names:
      shown = ", ".join(names[:8]) + (f", ... ({len(names)} entries)" if len(names) > 8 else "")
      raise ConvertError(f"{what} already exists and is not empty (holds {shown}); give a new "
                         "(or empty) directory (flanjax convert never overwrites a checkpoint).")
  check_writable_dir(path, flag or "convert target", ConvertError)


def _is_late_write_callback(err: BaseException | None) -> bool:
  """The error a TensorStore write that ends after its Orbax save failed raises from its
  callback: Orbax has closed the event loop the save ran on."""
  return isinstance(err, RuntimeError) and "Event loop is closed" in str(err)


def _is_clear(path: str, created: list[str]) -> bool:
  """Whether `path` is as it was before this run: missing if this run created it, else empty."""
  if created:
    return not os.path.lexists(path)
  try:
    return not os.listdir(path)
  except OSError:
    return False


def _clear_new_dir(path: str, created: list[str]) -> bool:
  """Removes everything in `path` (and `path` and the other directories of `created`, deepest
  first, which this run created); returns whether it is as it was (`_is_clear`)."""
  if created:
    shutil.rmtree(path, ignore_errors=True)
    for parent in created[1:]:
      with contextlib.suppress(OSError):
        os.rmdir(parent)
  else:
    with contextlib.suppress(OSError):
      for name in os.listdir(path):
        entry = os.path.join(path, name)
        if os.path.isdir(entry) and not os.path.islink(entry):
          shutil.rmtree(entry, ignore_errors=True)
        else:
          with contextlib.suppress(OSError):
            os.remove(entry)
  return _is_clear(path, created)


@contextlib.contextmanager
def _writing_new_dir(path: str, what: str):
  """Wraps the writes of one conversion into `path`, which `check_new_dir` found missing or
  empty. On any failure everything in it is removed again (and the directories this run
  created), so that a retry finds it as it was; an error that is not a FlanjaxError (a full
  disk: OSError, or Orbax's / TensorStore's / safetensors' wrappers of it) becomes one
  ConvertError naming `what` and the cause."""
  path = os.path.abspath(path)
  created = missing_folders(path)  # deepest first
  # A failed Orbax save returns while some of its TensorStore writes are still running: each
  # ends with a RuntimeError printed as a traceback, and may create files after the cleanup.
  # Count them instead of printing them, and clean up until the writes have stopped.
  late, previous_hook = [], sys.unraisablehook

  def hook(unraisable):
    if _is_late_write_callback(unraisable.exc_value):
      late.append(time.monotonic())
    else:
      previous_hook(unraisable)

  sys.unraisablehook = hook
  try:
    yield
  except BaseException as e:
    clean = _clear_new_dir(path, created)
    deadline, quiet = time.monotonic() + 30, 0
    while quiet < 3 and time.monotonic() < deadline:  # 0.6 s without a late write: all ended
      seen = len(late)
      time.sleep(0.2)
      if len(late) == seen and _is_clear(path, created):
        quiet += 1
      else:
        clean = _clear_new_dir(path, created)
        quiet = quiet + 1 if not clean and len(late) == seen else 0
    if isinstance(e, FlanjaxError) or not isinstance(e, Exception):
      raise
    full = any(s in str(e).lower() for s in ("no space left", "resource_exhausted"))
    raise ConvertError(
        f"Could not write {what} ({summary(e, limit=300)}); "
        + ("the partial output was removed" if clean else
           f"remove {path} before running the command again") + ". "
        + ("Free disk space" if full else "Fix the cause") + " and run the command again.") from e
  finally:
    if sys.unraisablehook is hook:
      sys.unraisablehook = previous_hook


def save_hf(hf_dir: str, config: T5Config, params, vocab_path: str | None = None, *,
            flag: str = ""):
  """Exports params to a new (or empty) `hf_dir`: config.json + model.safetensors (+ spiece.model)
  for transformers to load. A failed write leaves `hf_dir` as it was and raises ConvertError
  (naming `flag`, the CLI flag that gave `hf_dir`, if any)."""
  from safetensors.numpy import save_file
  hf_dir = os.fspath(hf_dir)
  what = f"{flag} {hf_dir}" if flag else hf_dir
  check_new_dir(hf_dir, flag)
  if vocab_path is not None and not os.path.isfile(vocab_path):
    raise ConvertError(f"The vocabulary {vocab_path} to export to {what} is not a file.")
  state = params_to_hf_state(config, params)
  with _writing_new_dir(hf_dir, what):
    os.makedirs(hf_dir, exist_ok=True)
    # "x": never replace a file that appeared meanwhile. model.safetensors appears last.
    config_path = os.path.join(hf_dir, "config.json")
    with open(config_path, "x") as f:
      json.dump(config_to_hf(config), f, indent=2, sort_keys=True)
    tmp = os.path.join(hf_dir, f".{SAFETENSORS}.tmp")
    save_file(state, tmp, metadata={"format": "pt"})
    # safetensors writes a 0600 file: give it the mode open() gave config.json (0o666 less the
    # umask), so that the user's group can read the export as the other files.
    os.chmod(tmp, stat.S_IMODE(os.stat(config_path).st_mode))
    if vocab_path:
      with open(vocab_path, "rb") as src, open(os.path.join(hf_dir, "spiece.model"), "xb") as dst:
        shutil.copyfileobj(src, dst)
    os.replace(tmp, os.path.join(hf_dir, SAFETENSORS))


# --------------------------------------------------------------------------- T5X


def _read_t5x_leaf(ckpt_dir: str, leaf, name: str) -> np.ndarray:
  """A T5X leaf: an inline array (msgpack) or a TensorStore spec dict (zarr array on disk)."""
  if isinstance(leaf, dict) and "kvstore" in leaf and "driver" in leaf:
    import tensorstore as ts
    spec = json.loads(json.dumps(leaf))  # a mutable deep copy
    kv = spec["kvstore"]
    if kv.get("driver") in ("gcs", "gfile"):
      kv.pop("bucket", None)
      kv["driver"] = "file"
    # Paths are relative to the checkpoint directory (tensorstore >= 0.1.14 keeps it in kvstore).
    if "path" in kv:
      kv["path"] = os.path.join(ckpt_dir, kv["path"])
    elif "path" in spec:
      kv["path"] = os.path.join(ckpt_dir, spec.pop("path"))
    spec.pop("dtype", None)
    spec.pop("metadata", None)
    try:
      arr = ts.open(spec, open=True).result().read().result()
    except Exception as e:  # tensorstore raises ValueError subclasses with the path
      raise ConvertError(f"Cannot read T5X array {name} at {kv.get('path')}: {e}") from e
    return np.asarray(arr, dtype=np.float32)
  arr = np.asarray(leaf)
  if arr.dtype.kind not in "fiu" and arr.dtype != jax.numpy.bfloat16:
    raise ConvertError(f"T5X checkpoint leaf {name} is neither an array nor a TensorStore spec.")
  return arr.astype(np.float32)


def _config_from_shapes(target: dict, **overrides) -> T5Config:
  """Infers a T5Config from the shapes of a T5X parameter tree."""
  try:
    vocab, d_model = np.shape(target["token_embedder"]["embedding"])
    heads, buckets = np.shape(target["encoder"]["relpos_bias"]["rel_embedding"])
    layer0 = target["encoder"]["layers_0"]
    joined = np.shape(layer0["attention"]["query"]["kernel"])[1]
    gated = "wi_0" in layer0["mlp"]
    d_ff = np.shape(layer0["mlp"]["wi_0" if gated else "wi"]["kernel"])[1]
  except KeyError as e:
    raise ConvertError(f"The T5X checkpoint lacks {e}: is it an (unscanned) T5 encoder-decoder "
                       "checkpoint (token_embedder/, encoder/layers_0/, ...)?") from e
  n_enc = sum(1 for k in target["encoder"] if k.startswith("layers_"))
  n_dec = sum(1 for k in target["decoder"] if k.startswith("layers_"))
  fields = dict(vocab_size=int(vocab), d_model=int(d_model), d_ff=int(d_ff),
                num_heads=int(heads), head_dim=int(joined) // int(heads),
                num_encoder_layers=n_enc, num_decoder_layers=n_dec,
                relative_attention_num_buckets=int(buckets),
                feed_forward_proj="gated-gelu" if gated else "relu",
                tie_word_embeddings="logits_dense" not in target["decoder"])
  fields.update(overrides)
  return T5Config(**fields)


def load_t5x(ckpt_dir: str, size: str | None = None, **config_overrides) -> tuple[T5Config, dict]:
  """Imports a T5X checkpoint directory (`checkpoint` msgpack + TensorStore zarr arrays).

  The model config is inferred from the parameter shapes (or taken from `size`, then checked);
  relative_attention_max_distance cannot be inferred and defaults to 128 (T5's value).
  """
  from flax import serialization
  ckpt_dir = os.path.abspath(os.fspath(ckpt_dir))
  path = os.path.join(ckpt_dir, "checkpoint")
  if not os.path.exists(path):
    raise ConvertError(f"{ckpt_dir} has no `checkpoint` file: pass a T5X step directory such as "
                       ".../flan_t5_base/checkpoint_1184000.")
  with open(path, "rb") as f:
    contents = serialization.msgpack_restore(f.read())
  contents = contents.get("optimizer", contents)
  if "target" not in contents:
    raise ConvertError(f"{path} holds no 'target' parameter tree (keys: {sorted(contents)}).")
  target = contents["target"]
  for stack in ("encoder", "decoder"):
    if "layers" in target.get(stack, {}):
      raise ConvertError(f"{ckpt_dir} is a scanned T5X checkpoint ({stack}/layers); flanjax "
                         "imports unscanned checkpoints (the published T5 / Flan-T5 ones).")

  def read(tree, prefix):
    out = {}
    for k, v in tree.items():
      name = f"{prefix}/{k}"
      if isinstance(v, dict) and not ("kvstore" in v and "driver" in v):
        out[k] = read(v, name)
      else:
        out[k] = _read_t5x_leaf(ckpt_dir, v, name)
    return out
  params = read(target, "target")
  if size is not None:
    config = get_config(size, **config_overrides)
  else:
    config = _config_from_shapes(params, **config_overrides)
  check_shapes(config, params, source="T5X checkpoint", size_flag=size is not None)
  return config, params


# --------------------------------------------------------------------------- CLI


def _find_vocab(src_dir: str | None) -> str | None:
  if not src_dir:
    return None
  for name in VOCAB_FILES:
    path = os.path.join(src_dir, name)
    if os.path.exists(path):
      return path
  return None


def check_vocab(path: str, extra_ids: int | None, config: T5Config, what: str = "--vocab"
                ) -> int | None:
  """ConvertError unless `path` is a SentencePiece model whose pieces fit the model's vocab_size;
  returns the extra ids to record: `extra_ids`, or as many as the model has room for after the
  pieces (a model whose embedding was cut to its tokenizer, e.g. 32,000 rows for T5's 32,000
  pieces and no sentinels)."""
  import sentencepiece
  try:
    pieces = sentencepiece.SentencePieceProcessor(model_file=path).get_piece_size()
  except (OSError, RuntimeError) as e:
    raise ConvertError(f"{what} {path} is not a SentencePiece model ({summary(e)}); pass "
                       "--vocab PATH with the model's spiece.model.") from None
  if pieces > config.vocab_size:
    raise ConvertError(f"{what} {path} has {pieces} pieces but the model has vocab_size="
                       f"{config.vocab_size}, so it is not the model's vocabulary; pass "
                       "--vocab PATH with the model's own spiece.model.")
  if extra_ids and pieces + extra_ids > config.vocab_size:
    fitted = config.vocab_size - pieces
    print(f"flanjax convert: note: the model's vocab_size={config.vocab_size} leaves room for "
          f"{fitted} of T5's {extra_ids} extra ids after the {pieces} pieces of {path}; "
          f"recording {fitted}.", file=sys.stderr)
    return fitted
  return extra_ids


def main(argv: list[str] | None = None) -> int:
  """`flanjax convert`: HF / T5X -> flanjax checkpoint, or flanjax checkpoint -> HF."""
  from flanjax.cli import FlagParser
  parser = FlagParser(
      prog="flanjax convert", description=__doc__.split("\n")[0],
      epilog="examples:\n  flanjax convert --from-hf ~/flan-t5-base --to /ckpt/flan_t5_base\n"
             "  flanjax convert --from-t5x gs_copy/flan_t5_base/checkpoint_1184000 "
             "--to /ckpt/flan_t5_base --vocab spiece.model\n"
             "  flanjax convert --from /ckpt/run1 --to-hf /export/run1_hf",
      formatter_class=argparse.RawDescriptionHelpFormatter)
  src = parser.add_mutually_exclusive_group(required=True)
  src.add_argument("--from-hf", metavar="DIR", help="a Hugging Face T5 / Flan-T5 model directory")
  src.add_argument("--from-t5x", metavar="DIR", help="a T5X checkpoint step directory")
  src.add_argument("--from", dest="from_ckpt", metavar="CKPT_DIR", help="a flanjax checkpoint")
  dst = parser.add_mutually_exclusive_group(required=True)
  dst.add_argument("--to", metavar="CKPT_DIR", help="write a flanjax checkpoint here")
  dst.add_argument("--to-hf", metavar="DIR", help="write a Hugging Face model directory here")
  parser.add_argument("--vocab", metavar="PATH",
                      help="SentencePiece model to record (default: spiece.model of the source)")
  parser.add_argument("--size", choices=sorted(SIZES),
                      help="T5X only: the model size (default: inferred from the shapes)")
  parser.add_argument("--step", type=int, default=None, help="--from: the step to export")
  args = parser.parse_args(argv)

  from flanjax import checkpoints
  # Checked before anything is read or written: never overwrite a run or a checkpoint.
  if args.to:
    check_new_dir(args.to, "--to")
  else:
    check_new_dir(args.to_hf, "--to-hf")
  vocab = args.vocab
  if vocab is not None and not os.path.exists(vocab):
    raise ConvertError(f"--vocab {vocab} does not exist.")
  # T5's SentencePiece model has 32,000 pieces and its checkpoints 100 sentinel ids after them
  # (vocab_size 32128 with padding), as every T5 task's vocabulary has.
  extra_ids, vocab_info = 100, None
  if args.from_hf:
    vocab = vocab or _find_vocab(args.from_hf)
    if vocab is not None:  # before the (long) read of the weights
      extra_ids = check_vocab(vocab, extra_ids, hf_config(args.from_hf),
                              "--vocab" if args.vocab else "The vocabulary")
    config, params = load_hf(args.from_hf)
  elif args.from_t5x:
    config, params = load_t5x(args.from_t5x, size=args.size)
  else:
    config, params, vocab_info = checkpoints.load_pretrained(args.from_ckpt, step=args.step)
    if config.scan_layers:
      from flanjax.model import unscan_params
      params = unscan_params(params, config)
      config = config.replace(scan_layers=False)
    if vocab_info and vocab_info.get("type") == "sentencepiece":
      if vocab is None:  # the recorded one, with its extra ids (earlier conversions: none)
        vocab, extra_ids = vocab_info.get("path"), vocab_info.get("extra_ids")
  if vocab is not None and os.path.exists(vocab) and not args.from_hf:
    extra_ids = check_vocab(vocab, extra_ids, config,
                            "--vocab" if args.vocab else "The vocabulary")
  if vocab is None and not vocab_info:
    src = (f"{args.from_hf} has no spiece.model" if args.from_hf
           else "a T5X checkpoint holds no vocabulary" if args.from_t5x
           else f"{args.from_ckpt} records no vocabulary")
    print(f"flanjax convert: warning: {src}, so {args.to or args.to_hf} will have none and "
          "`flanjax infer` cannot encode text for it; pass --vocab PATH (the model's "
          "spiece.model).", file=sys.stderr)
  n = sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(params))
  if args.to:
    checkpoints._quiet_orbax_save_errors()  # a failed save is reported below, on one line
    with _writing_new_dir(args.to, f"--to {args.to}"):
      # The checkpoint records flanjax's packaged model by name and copies any other local one
      # next to the parameters (checkpoints.portable_vocabulary).
      if vocab is not None and "://" not in vocab:
        vocab = os.path.abspath(vocab)
      if vocab is not None:
        description = {"type": "sentencepiece", "path": vocab,
                       **({} if extra_ids is None else {"extra_ids": extra_ids})}
      else:  # a flanjax checkpoint's other vocabulary (e.g. bytes) is kept as it is recorded
        description = vocab_info if args.from_ckpt else None
      checkpoints.save_pretrained(args.to, params, config, description)
    recorded = checkpoints.read_model_info(args.to).get("vocabulary")
    shown = ("none recorded" if not recorded
             else f"flanjax's {recorded['builtin']} model" if "builtin" in recorded
             else os.path.join(args.to, recorded["file"]) if "file" in recorded
             else recorded.get("path") or recorded["type"])
    # Parameters are stored in float32; the recorded dtype is what eval / infer / train compute
    # in (a Hugging Face float32 model's scores can differ in the last digits).
    print(f"Wrote flanjax checkpoint {args.to} ({n / 1e6:.1f}M parameters, vocabulary: "
          f"{shown}; it computes in {config.dtype}: T5Config.dtype in "
          f"{checkpoints.MODEL_INFO_FILE}).")
  else:
    save_hf(args.to_hf, config, params, vocab_path=vocab if vocab and os.path.exists(vocab)
            else None, flag="--to-hf")
    print(f"Wrote Hugging Face model {args.to_hf} ({n / 1e6:.1f}M parameters).")
  return 0
