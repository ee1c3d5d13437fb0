"""flanjax checkpoints: pretrained/converted parameters and the trainer's checkpoint manager.

Layout of a checkpoint directory (a `--model_dir`, or the output of `flanjax convert`):

  flanjax_model.json   {"model_config": T5Config.to_dict(), "vocabulary": {...}, "format_version": 1}
  <step>/              Orbax CheckpointManager step folders with items
    params/            always (a pytree of arrays, the model's parameter tree)
    opt_state/         training checkpoints only (the optax state)
    meta/              JSON: step, batches consumed (data iterator position), seed, ...
  data_state/<step>/process_<i>_of_<n>/
                       training only: process i's tf.data iterator position at <step> (written
                       by the trainer through `write_data_state`, pruned with the Orbax steps)

Orbax writes each step into a temporary folder and renames it when complete, and its
`CheckpointManager` lists only finalised steps, so a half-written checkpoint never looks valid;
`TrainCheckpointManager.latest_step()` additionally checks that every required item is present.
No TensorFlow here.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from flanjax.config import T5Config
from flanjax.errors import FlanjaxError
from flanjax.files import atomic_write

MODEL_INFO_FILE = "flanjax_model.json"
FORMAT_VERSION = 1
_STEP_RE = re.compile(r"^\d+$")


class CheckpointError(FlanjaxError):
  """A checkpoint directory that is missing, incomplete or does not match the request."""


_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def local_dir(path, what: str) -> str:
  """`path` as an absolute local path; a URL (gs://, s3://, ...) is refused with a clear error.

  Checkpoints, metrics and data states go through the local file system: a URL would otherwise
  become a local folder named "gs:" and the checkpoints would be lost with the machine.
  """
  path = os.fspath(path)
  if _URL_RE.match(path):
    scheme = path.split("://", 1)[0]
    raise CheckpointError(
        f"{what}={path!r} is a URL; flanjax reads and writes checkpoints through the local file "
        f"system. Mount the bucket on every host (for {scheme}:// e.g. `gcsfuse --implicit-dirs "
        f"BUCKET /gcs/BUCKET`; launch/tpu_vm.sh does it with GCS_BUCKET=BUCKET) and pass the "
        "mounted path, e.g. /gcs/BUCKET/run.")
  return os.path.abspath(path)


def vocabulary_info(vocabulary) -> dict[str, Any] | None:
  """Normalises a vocabulary description to the JSON form stored in flanjax_model.json.

  Accepts None, a dict with a "type" key, a path to a SentencePiece model (str), or a seqio
  vocabulary object (SentencePieceVocabulary / ByteVocabulary), without importing seqio.
  """
  if vocabulary is None:
    return None
  if isinstance(vocabulary, dict):
    if vocabulary.get("type") not in ("sentencepiece", "byte"):
      raise CheckpointError(f"vocabulary dict {vocabulary!r}: 'type' must be 'sentencepiece' or "
                            "'byte'.")
    return dict(vocabulary)
  if isinstance(vocabulary, (str, os.PathLike)):
    return {"type": "sentencepiece", "path": os.fspath(vocabulary)}
  path = getattr(vocabulary, "sentencepiece_model_file", None)
  if path is not None:
    info = {"type": "sentencepiece", "path": str(path)}
    extra = getattr(vocabulary, "extra_ids", None)
    if extra is not None:
      info["extra_ids"] = int(extra)
    return info
  if type(vocabulary).__name__ == "ByteVocabulary":
    return {"type": "byte", "extra_ids": int(getattr(vocabulary, "extra_ids", 0) or 0)}
  raise CheckpointError(f"Cannot describe vocabulary {vocabulary!r}: pass a SentencePiece model "
                        "path, a seqio SentencePieceVocabulary/ByteVocabulary, or a dict "
                        "{'type': 'sentencepiece', 'path': ...}.")


def make_vocabulary(info: dict[str, Any] | None):
  """Builds the seqio vocabulary described by `info` (imports seqio lazily; data side only)."""
  if info is None:
    return None
  import seqio  # noqa: PLC0415  (TensorFlow boundary: only when a vocabulary object is needed)
  if info["type"] == "byte":
    return seqio.ByteVocabulary(extra_ids=info.get("extra_ids", 0))
  return seqio.SentencePieceVocabulary(info["path"], extra_ids=info.get("extra_ids", 0))


def write_model_info(ckpt_dir: str, config: T5Config, vocabulary=None, **extra):
  """Writes flanjax_model.json (atomically, process 0 only)."""
  if jax.process_index() != 0:
    return
  os.makedirs(ckpt_dir, exist_ok=True)
  info = {"model_config": config.to_dict(), "vocabulary": vocabulary_info(vocabulary),
          "format_version": FORMAT_VERSION, **extra}
  atomic_write(os.path.join(ckpt_dir, MODEL_INFO_FILE), json.dumps(info, indent=2) + "\n")


def read_model_info(ckpt_dir: str) -> dict[str, Any]:
  """Reads flanjax_model.json of a checkpoint directory."""
  ckpt_dir = local_dir(ckpt_dir, "checkpoint")
  path = os.path.join(ckpt_dir, MODEL_INFO_FILE)
  if not os.path.isdir(ckpt_dir):
    raise CheckpointError(f"Checkpoint directory {ckpt_dir} does not exist.")
  if not os.path.exists(path):
    raise CheckpointError(
        f"{ckpt_dir} is not a flanjax checkpoint: {MODEL_INFO_FILE} is missing. Convert a "
        "Hugging Face or T5X checkpoint first: `flanjax convert --from-hf DIR --to CKPT_DIR`.")
  with open(path) as f:
    info = json.load(f)
  version = info.get("format_version")
  if version != FORMAT_VERSION:
    raise CheckpointError(f"{path}: format_version {version} is not supported "
                          f"(this flanjax reads {FORMAT_VERSION}).")
  return info


def finalized_steps(ckpt_dir: str, required_items=("params",)) -> list[int]:
  """Steps of `ckpt_dir` whose step folder was finalised and holds all `required_items`."""
  ckpt_dir = os.fspath(ckpt_dir)
  if not os.path.isdir(ckpt_dir):
    return []
  steps = []
  for name in os.listdir(ckpt_dir):
    folder = os.path.join(ckpt_dir, name)
    # Orbax writes `<step>.orbax-checkpoint-tmp-*` and renames it to `<step>` when complete.
    if not _STEP_RE.match(name) or not os.path.isdir(folder):
      continue
    if all(os.path.isdir(os.path.join(folder, item)) for item in required_items):
      steps.append(int(name))
  return sorted(steps)


def _abstract_tree(shapes, shardings):
  """ShapeDtypeStructs carrying target shardings (for restoring onto any mesh)."""
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      shapes, shardings)


def _numpy_restore_args(metadata_tree):
  return jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), metadata_tree)


def save_pretrained(ckpt_dir: str, params, config: T5Config, vocabulary=None, step: int = 0):
  """Saves `params` (+ model config and vocabulary) as a flanjax checkpoint at `step`.

  The directory must not already hold a checkpoint at `step` (never overwrite a user's
  checkpoint). Params are saved in whatever layout they are in; converted checkpoints should be
  unscanned (the layout is recorded through `config.scan_layers`).
  """
  ckpt_dir = local_dir(ckpt_dir, "checkpoint directory")
  if step in finalized_steps(ckpt_dir):
    raise CheckpointError(f"{ckpt_dir} already holds a checkpoint at step {step}; choose another "
                          "directory (flanjax never overwrites a checkpoint).")
  write_model_info(ckpt_dir, config, vocabulary)
  with ocp.CheckpointManager(
      ckpt_dir, item_names=("params",),
      options=ocp.CheckpointManagerOptions(enable_async_checkpointing=False,
                                           create=True)) as mngr:
    mngr.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(params)))
    mngr.wait_until_finished()


def load_pretrained(ckpt_dir: str, step: int | None = None, shardings=None):
  """Loads (config, params, vocabulary_info) from a flanjax checkpoint directory.

  step: a step to load (default: the latest finalised one).
  shardings: optional pytree of `jax.sharding.Sharding` matching the params: the arrays are
    restored directly onto them (any mesh). Without it the params come back as numpy arrays.
  Returns the model config saved with the checkpoint, the params (in the layout of
  `config.scan_layers`), and the vocabulary description dict (see `make_vocabulary`).
  """
  ckpt_dir = local_dir(ckpt_dir, "checkpoint")
  info = read_model_info(ckpt_dir)
  config = T5Config.from_dict(info["model_config"])
  steps = finalized_steps(ckpt_dir)
  if not steps:
    raise CheckpointError(f"{ckpt_dir} holds no complete checkpoint step (no finalised "
                          "<step>/params folder).")
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise CheckpointError(f"{ckpt_dir} has no checkpoint at step {step}; available: {steps}.")
  params = restore_params(ckpt_dir, step, shardings)
  return config, params, info.get("vocabulary")


def restore_params(ckpt_dir: str, step: int, shardings=None):
  """Restores the `params` item of one step (onto `shardings`, or as numpy arrays)."""
  with ocp.CheckpointManager(
      ckpt_dir, item_handlers={"params": ocp.PyTreeCheckpointHandler(),
                               # Registered so that training checkpoints' other items are
                               # known (and silently skipped).
                               "opt_state": ocp.PyTreeCheckpointHandler(),
                               "meta": ocp.JsonCheckpointHandler()},
      options=ocp.CheckpointManagerOptions(create=False)) as mngr:
    meta = mngr.item_metadata(step)["params"]
    meta = getattr(meta, "tree", meta)  # orbax TreeMetadata -> the plain pytree of ArrayMetadata
    if shardings is None:
      restored = mngr.restore(step, args=ocp.args.Composite(
          params=ocp.args.PyTreeRestore(restore_args=_numpy_restore_args(meta))))
      return restored["params"]
    _check_tree_matches(meta, shardings, ckpt_dir)
    target = _abstract_tree(meta, shardings)
    restored = mngr.restore(step, args=ocp.args.Composite(params=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target))))
    return restored["params"]


def path_keys(path) -> tuple:
  """The plain keys of a jax key path: dict keys, attribute names (e.g. optax state fields)
  and sequence indices, e.g. ('encoder', 'layers_0', 'mlp', 'wo', 'kernel')."""
  return tuple(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path)


def path_name(path) -> str:
  """A jax key path as a '/'-joined name ('encoder/layers_0/mlp/wo/kernel')."""
  return "/".join(str(k) for k in path_keys(path))


def _flat_names(tree) -> dict[str, Any]:
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {path_name(path): v for path, v in flat}


def _names_diff(saved, target, n: int) -> tuple[list[str], list[str]] | None:
  """(up to n leaf names missing in `saved`, up to n unexpected in it), or None if they match."""
  a, b = set(_flat_names(saved)), set(_flat_names(target))
  return None if a == b else (sorted(b - a)[:n], sorted(a - b)[:n])


def _check_tree_matches(saved, target, ckpt_dir):
  diff = _names_diff(saved, target, 8)
  if diff:
    raise CheckpointError(f"{ckpt_dir}: the saved parameter tree does not match the model: "
                          f"missing in checkpoint {diff[0]}, unexpected in checkpoint {diff[1]}.")


def param_mismatches(params, expected_shapes) -> str | None:
  """A one-line summary of parameters whose names or shapes differ, or None if all match."""
  got = {k: tuple(np.shape(v)) for k, v in _flat_names(params).items()}
  want = {k: tuple(v.shape) for k, v in _flat_names(expected_shapes).items()}
  problems = [f"{k}: missing (expected {want[k]})" for k in sorted(set(want) - set(got))]
  problems += [f"{k}: unexpected" for k in sorted(set(got) - set(want))]
  problems += [f"{k}: {got[k]} != expected {want[k]}" for k in sorted(set(got) & set(want))
               if got[k] != want[k]]
  if not problems:
    return None
  return "; ".join(problems[:6]) + (f"; ... ({len(problems)} in all)" if len(problems) > 6
                                    else "")


def check_params_match(params, expected_shapes, source: str):
  """Raises a CheckpointError listing parameters whose names or shapes differ from the model."""
  shown = param_mismatches(params, expected_shapes)
  if shown:
    raise CheckpointError(f"{source} does not match the configured model: {shown}. Use the "
                          "model config saved with the checkpoint (leave train.model_config "
                          "unset) or the matching gin/models/t5_1_1_<size>.gin.")


def _process_folder() -> str:
  return f"process_{jax.process_index()}_of_{jax.process_count()}"


class TrainCheckpointManager:
  """The trainer's Orbax CheckpointManager: items params / opt_state / meta.

  Saves every `save_period` steps (asynchronously unless async_save=False), keeps the last
  `keep` checkpoints and, with keep_best > 0, also the best `keep_best` by `best_metric` (from
  the metrics passed to `save`). Only finalised steps holding all items are ever restored.
  """

  ITEMS = ("params", "opt_state", "meta")

  def __init__(self, model_dir: str, *, save_period: int = 1000, keep: int | None = 3,
               keep_best: int = 0, best_metric: str | None = None, best_mode: str = "max",
               async_save: bool = True):
    from orbax.checkpoint import checkpoint_managers as cm
    if save_period <= 0:
      raise CheckpointError(f"checkpoint_period={save_period} must be > 0.")
    if keep is not None and keep < 1:
      raise CheckpointError(f"keep_checkpoints={keep} must be >= 1 (or None to keep all).")
    if keep_best and not best_metric:
      raise CheckpointError("keep_best > 0 needs best_metric (an evaluation metric name).")
    if best_mode not in ("max", "min"):
      raise CheckpointError(f"best_mode={best_mode!r}: use 'max' or 'min'.")
    self.model_dir = local_dir(model_dir, "model_dir")
    self.save_period = save_period
    policies = [cm.LatestN(n=keep)]
    if keep_best:
      policies.append(cm.BestN(get_metric_fn=lambda m: m[best_metric], reverse=best_mode == "min",
                               n=keep_best, keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        create=True, enable_async_checkpointing=async_save,
        # The trainer decides when to save (period, end of run, SIGTERM) and passes force=True.
        preservation_policy=cm.AnyPreservationPolicy(policies),
        cleanup_tmp_directories=True)
    self._mngr = ocp.CheckpointManager(
        self.model_dir, options=options,
        item_handlers={"params": ocp.PyTreeCheckpointHandler(),
                       "opt_state": ocp.PyTreeCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()})

  def should_save(self, step: int) -> bool:
    return step % self.save_period == 0

  def latest_step(self) -> int | None:
    """The latest finalised step that holds params, opt_state and meta."""
    self._mngr.reload()
    orbax_steps = set(self._mngr.all_steps())
    steps = [s for s in finalized_steps(self.model_dir, self.ITEMS) if s in orbax_steps]
    return steps[-1] if steps else None

  def save(self, step: int, state, meta: dict, metrics: dict | None = None, force: bool = False):
    """Starts saving `state` (a TrainState) + `meta` at `step` (returns before the write ends
    when async)."""
    del force  # the trainer only calls save when it wants a checkpoint
    if step in self._mngr.all_steps():
      return False
    args = ocp.args.Composite(
        params=ocp.args.PyTreeSave(state.params),
        opt_state=ocp.args.PyTreeSave(state.opt_state),
        meta=ocp.args.JsonSave(meta))
    saved = self._mngr.save(step, args=args, metrics=metrics, force=True)
    self._prune_data_states(keep=step)
    return saved

  def restore(self, step: int, abstract_state, shardings):
    """Restores (state, meta) at `step` onto `shardings` (any mesh)."""
    saved_opt = self._mngr.item_metadata(step)["opt_state"]
    saved_opt = getattr(saved_opt, "tree", saved_opt)
    diff = None if saved_opt is None else _names_diff(saved_opt, abstract_state.opt_state, 3)
    if diff:
      raise CheckpointError(
          f"{self.model_dir} step {step}: the saved optimizer state has another layout than "
          f"this run's optimizer (other optimizer settings, or a flanjax version before "
          f"OptimizerConfig.stacked_layers; e.g. missing {diff[0]}, unexpected "
          f"{diff[1]}). Resume with the settings that wrote it (e.g. "
          f"--gin.OptimizerConfig.stacked_layers=False), or start a new --model_dir from its "
          f"params with --gin.train.init_checkpoint=\"'{self.model_dir}'\" (a fresh "
          f"optimizer state). The checkpoint is left as it is.")
    target_params = _abstract_tree(abstract_state.params, shardings.params)
    target_opt = _abstract_tree(abstract_state.opt_state, shardings.opt_state)
    restored = self._mngr.restore(step, args=ocp.args.Composite(
        params=ocp.args.PyTreeRestore(
            item=target_params,
            restore_args=ocp.checkpoint_utils.construct_restore_args(target_params)),
        opt_state=ocp.args.PyTreeRestore(
            item=target_opt,
            restore_args=ocp.checkpoint_utils.construct_restore_args(target_opt)),
        meta=ocp.args.JsonRestore()))
    meta = restored["meta"]
    step_arr = jax.device_put(np.asarray(meta["step"], np.int32), shardings.step)
    state = abstract_state.replace(step=step_arr, params=restored["params"],
                                   opt_state=restored["opt_state"])
    return state, meta

  def _data_state_dir(self, step: int) -> str:
    return os.path.join(self.model_dir, "data_state", str(step), _process_folder())

  def write_data_state(self, step: int, save_fn, info: dict) -> None:
    """Writes this process's data iterator state for `step`: `save_fn(prefix)` writes the state
    files, `info` (JSON) what is needed to rebuild the iterator. The folder appears complete or
    not at all. Written before the step's Orbax save, so every finalised step has its state;
    `save` and `close` delete the states of steps Orbax no longer keeps."""
    final = self._data_state_dir(step)
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_fn(os.path.join(tmp, "state"))
    atomic_write(os.path.join(tmp, "info.json"), json.dumps(info))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)

  def read_data_state(self, step: int) -> dict | None:
    """This process's saved data state for `step`: `info` plus "prefix", or None if absent."""
    folder = self._data_state_dir(step)
    info_path = os.path.join(folder, "info.json")
    if not os.path.exists(info_path):
      return None
    with open(info_path) as f:
      return {**json.load(f), "prefix": os.path.join(folder, "state")}

  def _prune_data_states(self, keep: int | None = None) -> None:
    root = os.path.join(self.model_dir, "data_state")
    if not os.path.isdir(root):
      return
    live = set(self._mngr.all_steps()) | {keep}
    own = _process_folder()
    for name in os.listdir(root):
      if _STEP_RE.match(name) and int(name) not in live:
        shutil.rmtree(os.path.join(root, name, own), ignore_errors=True)
        try:
          os.rmdir(os.path.join(root, name))  # the last process out removes the step folder
        except OSError:
          pass

  def wait(self):
    self._mngr.wait_until_finished()

  def close(self):
    self._mngr.wait_until_finished()
    self._prune_data_states()
    self._mngr.close()
