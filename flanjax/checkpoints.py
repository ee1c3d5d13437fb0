"""flanjax checkpoints: pretrained/converted parameters and the trainer's checkpoint manager.

Layout of a checkpoint directory (a `--model_dir`, or the output of `flanjax convert`):

  flanjax_model.json   {"model_config": T5Config.to_dict(), "vocabulary": {...}, "format_version": 1}
  spiece.model         the checkpoint's own copy of its SentencePiece model (the vocabulary records
                       it as {"file": "spiece.model"}; flanjax's packaged one by name)
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
Orbax takes every folder named by a number for a checkpoint step (and deletes old ones), and
every folder whose name holds ".orbax-checkpoint-tmp" for an unfinished save (deleted at start):
`check_no_foreign_entries` refuses a directory holding such entries that flanjax did not write.
No TensorFlow here.
"""
from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from flanjax import files
from flanjax.config import T5Config, is_int
from flanjax.errors import FlanjaxError, summary
from flanjax.files import atomic_write

log = logging.getLogger(__name__)

MODEL_INFO_FILE = "flanjax_model.json"
FORMAT_VERSION = 1
TRAIN_ITEMS = ("params", "opt_state", "meta")
# The step names of Orbax's CheckpointManager (orbax-checkpoint 0.12.8, `standard_name_format()`
# without a prefix: `re.search` of this pattern on a directory's name). As in Orbax, `\d` also
# takes non-ASCII digits and `$` a trailing newline.
_STEP_RE = re.compile(r"^(0|[1-9]\d*)$")
# Orbax's unfinished saves: a (non-symlink) directory whose name holds this (`<step>` + it, and
# `<item>` + it inside); `cleanup_tmp_directories` deletes every such directory at start.
_TMP_SUFFIX = ".orbax-checkpoint-tmp"
_TMP_STEP_RE = re.compile(r"^(0|[1-9]\d*)\.orbax-checkpoint-tmp(-\d+)?$")
# What Orbax writes into a step folder besides the items: its files, and with keep_best the
# step's evaluation metrics (item `metrics`, read back when a run resumes: `best_fn`).
_ORBAX_STEP_FILES = ("_CHECKPOINT_METADATA", "commit_success.txt", "descriptor")
_METRICS_ITEM = "metrics"
_PROCESS_RE = re.compile(r"^process_\d+_of_\d+(\.tmp)?$")


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


def check_writable_dir(path: str, what: str = "model_dir") -> str:
  """Makes sure `path` is a folder that files can be created in before any work: a clear
  CheckpointError naming `what` for a file, or a read-only or full location. The folders it
  makes for the check (the probe file goes in `path` itself) are removed again, so a run that
  still stops on a bad setting leaves nothing behind (see `files.check_writable_dir`)."""
  return files.check_writable_dir(path, what, CheckpointError, make_missing=True)


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


def make_vocabulary(info: dict[str, Any] | None, ckpt_dir: str | None = None):
  """Builds the seqio vocabulary described by `info` (imports seqio lazily; data side only).

  `info` as recorded in `ckpt_dir`'s flanjax_model.json (resolved by `resolve_vocabulary`), or
  already resolved. A SentencePiece model that cannot be found is one CheckpointError.
  """
  info = resolve_vocabulary(info, ckpt_dir)
  if info is None:
    return None
  import seqio  # noqa: PLC0415  (TensorFlow boundary: only when a vocabulary object is needed)
  if info["type"] == "byte":
    return seqio.ByteVocabulary(extra_ids=info.get("extra_ids", 0))
  return seqio.SentencePieceVocabulary(info["path"], extra_ids=info.get("extra_ids", 0))


# SentencePiece models that ship inside flanjax, recorded by name so that a checkpoint does not
# depend on where flanjax is installed (`"builtin": NAME` in flanjax_model.json).
BUILTIN_VOCABULARIES = {
    "offline": os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets",
                            "offline_spm.model"),
}
# A checkpoint's own copy of its SentencePiece model (as `flanjax convert` and Hugging Face name
# it), recorded relative to the checkpoint so that copying or moving the folder keeps it.
VOCAB_FILE = "spiece.model"


def _same_bytes(a: str, b: str) -> bool:
  if os.path.getsize(a) != os.path.getsize(b):
    return False
  with open(a, "rb") as fa, open(b, "rb") as fb:
    return fa.read() == fb.read()


def resolve_vocabulary(info: dict[str, Any] | None, ckpt_dir: str | None = None, *,
                       missing_ok: bool = False) -> dict[str, Any] | None:
  """The vocabulary description of `ckpt_dir`'s flanjax_model.json with an absolute "path".

  `"builtin": NAME` is this install's packaged model; `"file": NAME` the checkpoint's own copy
  (`ckpt_dir/NAME`). A "path" (what earlier flanjax recorded: absolute, or relative to the
  working directory it ran in) that no longer exists falls back to the same model in this
  install (the packaged offline vocabulary of another venv) or to the checkpoint's own
  `spiece.model` (a copied or moved checkpoint). A SentencePiece model found nowhere raises a
  CheckpointError naming the file and the fix, unless `missing_ok` (then the description comes
  back with its unresolved path).
  """
  if info is None or info.get("type") != "sentencepiece":
    return info
  info = dict(info)
  builtin, own = info.pop("builtin", None), info.pop("file", None)
  if builtin is not None:
    if builtin not in BUILTIN_VOCABULARIES:
      raise CheckpointError(
          f"{os.path.join(ckpt_dir or '.', MODEL_INFO_FILE)}: \"builtin\" vocabulary "
          f"{builtin!r} is not one this flanjax ships ({sorted(BUILTIN_VOCABULARIES)}); "
          "upgrade flanjax, or record its SentencePiece model with \"path\".")
    return {**info, "path": BUILTIN_VOCABULARIES[builtin]}
  if own is not None:
    if ckpt_dir is None:
      raise CheckpointError(f"vocabulary {info!r} names its checkpoint's own file {own!r}: "
                            "resolve it with resolve_vocabulary(info, that checkpoint).")
    path = os.path.join(os.path.abspath(ckpt_dir), own)
    candidates = [path]
  else:
    path = info.get("path")
    if not isinstance(path, str) or _URL_RE.match(path):
      return info
    path = os.path.abspath(path)
    candidates = [path]
    if os.path.basename(path) == os.path.basename(BUILTIN_VOCABULARIES["offline"]) and (
        os.path.basename(os.path.dirname(path)) == "assets"):
      candidates.append(BUILTIN_VOCABULARIES["offline"])  # another install's packaged copy
    if ckpt_dir is not None:
      candidates.append(os.path.join(os.path.abspath(ckpt_dir), VOCAB_FILE))
  for candidate in candidates:
    if os.path.isfile(candidate):
      return {**info, "path": candidate}
  if missing_ok:
    return {**info, "path": path}
  where = (f"{os.path.join(ckpt_dir, MODEL_INFO_FILE)} records" if ckpt_dir
           else "the vocabulary names")
  fix = (f"copy that SentencePiece model to {os.path.join(ckpt_dir, VOCAB_FILE)}" if ckpt_dir
         else "pass a SentencePiece model that exists")
  raise CheckpointError(f"{where} the SentencePiece model {path}, which does not exist (moved "
                        f"or deleted?); {fix}.")


def _builtin_name(path: str) -> str | None:
  for name, builtin in BUILTIN_VOCABULARIES.items():
    if os.path.isfile(builtin) and _same_bytes(path, builtin):
      return name
  return None


def readable_file(path) -> bool:
  """Whether `path` is a local file that can be read here (not gs://...)."""
  return isinstance(path, str) and not _URL_RE.match(path) and os.path.isfile(path)


def same_vocabulary(saved: dict, now: dict, unreadable_ok: bool = False) -> bool:
  """Whether two (resolved) vocabulary descriptions are the same vocabulary: the same type and
  extra ids (where both record them: checkpoints converted by earlier flanjax record none), and
  the same SentencePiece model: the same path, or files with the same bytes (a copy, another
  install's assets). A file of `saved` that cannot be read any more is not held against `now`,
  nor, with `unreadable_ok`, one of `now` (a gs:// model: nothing to compare here)."""
  if saved.get("type") != now.get("type"):
    return False
  if None not in (saved.get("extra_ids"), now.get("extra_ids")) and (
      saved["extra_ids"] != now["extra_ids"]):
    return False
  a, b = saved.get("path"), now.get("path")
  if a == b or not readable_file(a):
    return True
  if not readable_file(b):
    return unreadable_ok
  return _same_bytes(a, b)


def check_vocabulary_copy(info: dict[str, Any] | None, ckpt_dir: str) -> None:
  """Refuses (CheckpointError) a `ckpt_dir` whose `spiece.model` is another model than the
  vocabulary `info` (resolved), which `portable_vocabulary` would copy there: a check every
  process can make before any work (the copy itself is process 0's)."""
  if info is None or "file" in info or "builtin" in info:
    return
  if info.get("type") != "sentencepiece" or not readable_file(info.get("path")):
    return
  path = os.path.abspath(info["path"])
  own = os.path.join(os.path.abspath(ckpt_dir), VOCAB_FILE)
  if (os.path.lexists(own) and _builtin_name(path) is None
      and not (os.path.isfile(own) and _same_bytes(path, own))):
    raise CheckpointError(
        f"{ckpt_dir} holds a {VOCAB_FILE} that is not this model's vocabulary ({path}); "
        "flanjax keeps the checkpoint's own copy of its SentencePiece model there: move that "
        "file away, or use another directory.")


def portable_vocabulary(info: dict[str, Any] | None, ckpt_dir: str) -> dict[str, Any] | None:
  """The form of a (resolved) vocabulary description that `ckpt_dir` records: flanjax's packaged
  model by name (`"builtin"`), any other local SentencePiece model as the checkpoint's own copy
  (`"file": "spiece.model"`, copied into `ckpt_dir` if it is elsewhere), a remote one (gs://...)
  as it is.
  """
  if info is not None and "file" in info:  # a checkpoint's record, as read from its json
    if not os.path.isfile(os.path.join(ckpt_dir, info["file"])):
      raise CheckpointError(
          f"vocabulary {info!r} names a checkpoint's own file, which {ckpt_dir} lacks: pass "
          "the description load_pretrained returns (or resolve_vocabulary(info, its "
          "checkpoint)), which has the file's path.")
    info = resolve_vocabulary(info, ckpt_dir)
  if info is None or info.get("type") != "sentencepiece" or not readable_file(info.get("path")):
    return info
  check_vocabulary_copy(info, ckpt_dir)
  path = os.path.abspath(info["path"])
  rest = {k: v for k, v in info.items() if k not in ("path", "builtin", "file")}
  name = _builtin_name(path)
  if name is not None:
    return {"type": "sentencepiece", "builtin": name, **rest}
  own = os.path.join(os.path.abspath(ckpt_dir), VOCAB_FILE)
  if not os.path.lexists(own):
    with open(path, "rb") as f:
      atomic_write(own, f.read())
  return {"type": "sentencepiece", "file": VOCAB_FILE, **rest}


def model_info(config: T5Config, vocabulary=None, **extra) -> dict[str, Any]:
  """The content of flanjax_model.json for `config` and `vocabulary`."""
  return {"model_config": config.to_dict(), "vocabulary": vocabulary_info(vocabulary),
          "format_version": FORMAT_VERSION, **extra}


def write_model_info(ckpt_dir: str, config: T5Config, vocabulary=None, **extra):
  """Writes flanjax_model.json (atomically, process 0 only; left as it is when unchanged), with
  the vocabulary in its portable form (`portable_vocabulary`: a copied SentencePiece model)."""
  if jax.process_index() != 0:
    return
  os.makedirs(ckpt_dir, exist_ok=True)
  info = model_info(config, vocabulary, **extra)
  info["vocabulary"] = portable_vocabulary(info["vocabulary"], ckpt_dir)
  path = os.path.join(ckpt_dir, MODEL_INFO_FILE)
  try:
    with open(path) as f:
      if json.load(f) == info:
        return
  except (OSError, ValueError):
    pass
  atomic_write(path, json.dumps(info, indent=2) + "\n")


def read_model_info(ckpt_dir: str) -> dict[str, Any]:
  """Reads (and checks) flanjax_model.json of a checkpoint directory."""
  ckpt_dir = local_dir(ckpt_dir, "checkpoint")
  path = os.path.join(ckpt_dir, MODEL_INFO_FILE)
  if not os.path.isdir(ckpt_dir):
    raise CheckpointError(f"Checkpoint directory {ckpt_dir} does not exist.")
  if not os.path.exists(path):
    # quickstart's and heldout's --output_dir hold their models in model/ and <cluster>/model/.
    inside = sorted(os.path.dirname(p) for pattern in ("*", os.path.join("*", "model"))
                    for p in glob.glob(os.path.join(glob.escape(ckpt_dir), pattern,
                                                    MODEL_INFO_FILE)))
    if inside:
      raise CheckpointError(
          f"{ckpt_dir} is not a flanjax checkpoint ({MODEL_INFO_FILE} is missing) but holds "
          f"{'one' if len(inside) == 1 else len(inside)}: pass "
          + " or ".join(inside[:3]) + (", ..." if len(inside) > 3 else "") + ".")
    raise CheckpointError(
        f"{ckpt_dir} is not a flanjax checkpoint: {MODEL_INFO_FILE} is missing. Convert a "
        "Hugging Face or T5X checkpoint first: `flanjax convert --from-hf DIR --to CKPT_DIR`.")
  fix = (f"restore it from a copy, or rewrite it as {{\"model_config\": {{...T5Config fields}}, "
         f"\"vocabulary\": ..., \"format_version\": {FORMAT_VERSION}}} (the model the checkpoints "
         "were trained with).")
  try:
    with open(path, encoding="utf-8") as f:
      info = json.load(f)
  except (OSError, ValueError) as e:  # ValueError: invalid JSON or UTF-8
    raise CheckpointError(f"{path} cannot be read as JSON ({summary(e)}); {fix}") from None
  if not isinstance(info, dict):
    raise CheckpointError(f"{path} holds a JSON {type(info).__name__}, not an object; {fix}")
  version = info.get("format_version")
  if version != FORMAT_VERSION:
    raise CheckpointError(f"{path}: format_version {version} is not supported "
                          f"(this flanjax reads {FORMAT_VERSION}).")
  if not isinstance(info.get("model_config"), dict):
    raise CheckpointError(f"{path} has no \"model_config\" object; {fix}")
  try:
    T5Config.from_dict(info["model_config"])
  except (ValueError, TypeError) as e:
    raise CheckpointError(f"{path}: its model_config is not a valid T5Config "
                          f"({summary(e)}); {fix}") from None
  vocab = info.get("vocabulary")
  if vocab is not None and (not isinstance(vocab, dict)
                            or vocab.get("type") not in ("sentencepiece", "byte")
                            or (vocab["type"] == "sentencepiece"
                                and not any(isinstance(vocab.get(k), str)
                                            for k in ("path", "builtin", "file")))):
    raise CheckpointError(f"{path}: \"vocabulary\" {vocab!r} is not null, {{\"type\": \"byte\"}} "
                          "or {\"type\": \"sentencepiece\", \"path\": ...}; " + fix)
  return info


def _entries(folder: str) -> list[str]:
  """The sorted names in `folder`; [] when it is missing or gone. In a multi-process run another
  process's `check_writable_dir` may make a missing model_dir for its probe and remove it again
  between an `isdir` and a `listdir` here."""
  try:
    return sorted(os.listdir(folder))
  except (FileNotFoundError, NotADirectoryError):
    return []


def finalized_steps(ckpt_dir: str, required_items=("params",)) -> list[int]:
  """Steps of `ckpt_dir` whose step folder was finalised and holds all `required_items`."""
  ckpt_dir = os.fspath(ckpt_dir)
  steps = []
  for name in _entries(ckpt_dir):
    folder = os.path.join(ckpt_dir, name)
    # Orbax writes `<step>.orbax-checkpoint-tmp-*` and renames it to `<step>` when complete.
    if not _STEP_RE.match(name) or not os.path.isdir(folder):
      continue
    if all(os.path.isdir(os.path.join(folder, item)) for item in required_items):
      steps.append(int(name))
  return sorted(steps)


def _is_step_folder(path: str, unfinished: bool = False) -> bool:
  """Whether `path` is a step folder as flanjax writes it through Orbax: a directory (not a
  symlink) holding only items and Orbax's files, at least one of them unless it is an
  `unfinished` save (a `<step>.orbax-checkpoint-tmp` folder, possibly still empty)."""
  if os.path.islink(path) or not os.path.isdir(path):
    return False
  names = os.listdir(path)
  items = TRAIN_ITEMS + (_METRICS_ITEM,)
  known = set(items) | set(_ORBAX_STEP_FILES)
  # A save in progress may also hold `<item>.orbax-checkpoint-tmp*` and Orbax's own temporary
  # files next to the known names.
  prefixes = tuple(known) if unfinished else tuple(item + _TMP_SUFFIX for item in items)
  if not all(n in known or n.startswith(prefixes) for n in names):
    return False
  return unfinished or any(n in known for n in names)


def _describe(path: str) -> str:
  """'NAME/ (holds a, b)', 'NAME/ (empty)', 'NAME (a file)', 'NAME (a symbolic link)'."""
  name = os.path.basename(path)
  name = name if name.isprintable() else repr(name)  # e.g. a trailing newline
  if os.path.islink(path):
    return f"{name} (a symbolic link)"
  if not os.path.isdir(path):
    return f"{name} (a file)"
  try:
    names = sorted(os.listdir(path))
  except OSError as e:
    return f"{name}/ (unreadable: {e.strerror or e})"
  if not names:
    return f"{name}/ (empty)"
  shown = ", ".join(names[:3]) + (f", ... ({len(names)} entries)" if len(names) > 3 else "")
  return f"{name}/ (holds {shown})"


def foreign_entries(ckpt_dir: str) -> list[str]:
  """Entries of `ckpt_dir` that Orbax's CheckpointManager would take for checkpoint steps or
  unfinished saves (and may delete) but that are not flanjax step folders, described.

  Orbax (0.12.8) takes any directory named by a number (`0`, `7`, `2023`; no leading zero) for
  a step and deletes the oldest beyond keep_checkpoints, and deletes every directory whose name
  holds ".orbax-checkpoint-tmp" when it starts. `data_state/` holds flanjax's data iterator
  states (`data_state/<step>/process_<i>_of_<n>/`), pruned with the steps.
  """
  ckpt_dir = os.fspath(ckpt_dir)
  found = []
  for name in _entries(ckpt_dir):
    path = os.path.join(ckpt_dir, name)
    if _STEP_RE.match(name):
      if not _is_step_folder(path):
        found.append(_describe(path))
    elif _TMP_SUFFIX in name and os.path.isdir(path) and not os.path.islink(path):
      if not (_TMP_STEP_RE.match(name) and _is_step_folder(path, unfinished=True)):
        found.append(_describe(path))
  root = os.path.join(ckpt_dir, "data_state")
  if os.path.lexists(root) and not os.path.isdir(root):
    found.append(_describe(root) + " where flanjax keeps the data iterator states")
  elif os.path.isdir(root):
    for name in _entries(root):
      path = os.path.join(root, name)
      if _STEP_RE.match(name) and not (
          os.path.isdir(path) and not os.path.islink(path)
          and all(_PROCESS_RE.match(n) for n in os.listdir(path))):
        found.append("data_state/" + _describe(path))
  return found


def check_no_foreign_entries(ckpt_dir: str, what: str = "model_dir") -> None:
  """Refuses (CheckpointError) a directory holding entries that Orbax would take for checkpoint
  steps or unfinished saves, and delete, but that flanjax did not write (`foreign_entries`)."""
  found = foreign_entries(ckpt_dir)
  if found:
    shown = ", ".join(found[:8]) + (f", ... ({len(found)} in all)" if len(found) > 8 else "")
    raise CheckpointError(
        f"{what} {ckpt_dir} holds entries that are not flanjax checkpoint steps: {shown}. "
        "Orbax, which saves flanjax's checkpoints, takes every folder named by a number for a "
        "checkpoint step (and deletes old ones) and deletes folders named *.orbax-checkpoint-tmp*"
        f": move them out of {ckpt_dir}, or use another --model_dir (e.g. a new subfolder).")


def incomplete_steps(ckpt_dir: str) -> dict[int, list[str]]:
  """{step: missing items} of the step folders that lack some of params / opt_state / meta (a
  params-only step is a pretrained checkpoint, not counted), e.g. after an interrupted copy or a
  deleted folder: they are never resumed from."""
  out = {}
  for name in _entries(ckpt_dir):
    path = os.path.join(ckpt_dir, name)
    if not _STEP_RE.match(name) or name != str(int(name)) or not _is_step_folder(path):
      continue
    present = [item for item in TRAIN_ITEMS if os.path.isdir(os.path.join(path, item))]
    if len(present) < len(TRAIN_ITEMS) and present != ["params"]:  # params only: pretrained
      out[int(name)] = [item for item in TRAIN_ITEMS if item not in present]
  return dict(sorted(out.items()))


def set_aside_incomplete_steps(ckpt_dir: str) -> list[tuple[int, list[str], str]]:
  """Renames the incomplete training steps after the latest complete one to `<step>.incomplete`
  (process 0; nothing is deleted): a resume retrains those steps, and their folders would
  otherwise stop the new checkpoints of the same steps from being saved. Returns
  [(step, missing items, new path)]."""
  complete = finalized_steps(ckpt_dir, TRAIN_ITEMS)
  later = {s: m for s, m in incomplete_steps(ckpt_dir).items()
           if not complete or s > complete[-1]}
  _sync("flanjax_incomplete_steps_listed")  # every process lists before process 0 renames
  moved = []
  for step, missing in later.items():
    src = os.path.join(ckpt_dir, str(step))
    dst, n = src + ".incomplete", 1
    while os.path.lexists(dst):
      n += 1
      dst = f"{src}.incomplete{n}"
    if jax.process_index() == 0:
      os.rename(src, dst)
    moved.append((step, missing, dst))
  _sync("flanjax_incomplete_steps_moved")
  return moved


def _sync(name: str) -> None:
  """A barrier of all processes (nothing on one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


class UnsaveableDataState(Exception):
  """A data iterator tf.data cannot serialise (e.g. a Python function in its pipeline):
  `TrainCheckpointManager.write_data_state`'s `save_fn` raises it."""


def _process_statuses(status: int) -> list[int]:
  """Every process's `status` (an int), by process index (every process must call it)."""
  if jax.process_count() == 1:
    return [status]
  from jax.experimental import multihost_utils
  flags = multihost_utils.process_allgather(np.asarray([status], np.int32))
  return [int(x) for x in np.asarray(flags).reshape(-1)]


def unreadable_step_error(ckpt_dir: str, step: int, err: BaseException, resume: bool = True,
                          item: str | None = None) -> CheckpointError:
  """'checkpoint step N in DIR is unreadable (cause); move it aside (...) to resume from step M'
  (`resume`: a training resume; else a load, e.g. for inference; `item`: the item that failed,
  when known)."""
  items = TRAIN_ITEMS if resume else ("params",)
  earlier = [s for s in finalized_steps(ckpt_dir, items) if s < step]
  path = os.path.join(ckpt_dir, str(step))
  aside = f"move it aside (e.g. mv {path} {path}.bad)"
  if resume and earlier:
    todo = (f"{aside} to resume from step {earlier[-1]}"
            + (f" (the finalized earlier steps: {earlier})" if len(earlier) > 1 else ""))
  elif resume:
    todo = (f"no earlier checkpoint is finalized: {aside} to start over, or use a new "
            "--model_dir")
  elif earlier:
    todo = f"load an earlier step (finalized: {earlier}), or {aside}"
  else:
    todo = f"no earlier step is finalized; {aside} and convert or train the checkpoint again"
  cause = f"{item}/: {summary(err)}" if item else summary(err)
  return CheckpointError(f"checkpoint step {step} in {ckpt_dir} is unreadable ({cause}); "
                         f"{todo}.")


def _quiet_orphaned_reads() -> None:
  """When a restore fails (a damaged step), the reads of the step's other arrays still in
  flight complete on tensorstore's threads and try to wake Orbax's event loop, closed by then:
  each reported a "RuntimeError: Event loop is closed" traceback through sys.unraisablehook,
  dozens of them around the one-line error. Those (and only those) are dropped. Installed once,
  before a restore."""
  hook = sys.unraisablehook
  if getattr(hook, "_flanjax_quiet", False):
    return

  def quiet(unraisable):
    exc = unraisable.exc_value
    if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
      return
    hook(unraisable)
  quiet._flanjax_quiet = True
  sys.unraisablehook = quiet


# What restoring a damaged step raises (tensorstore and JSON errors are ValueErrors; Orbax
# raises a plain Exception for an array it cannot read, e.g. a truncated data file).
_READ_ERRORS = (OSError, ValueError, LookupError, TypeError, AttributeError)


def _read_error(e: BaseException) -> bool:
  """Whether a restore failed on the step's data (not on the shardings asked for: a mesh axis
  that does not divide a dimension is jax's IndivisibleError, a ValueError too)."""
  if type(e).__name__ == "IndivisibleError":
    return False
  return isinstance(e, _READ_ERRORS) or type(e) is Exception


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
  trained = finalized_steps(ckpt_dir, TRAIN_ITEMS)
  if trained:  # its flanjax_model.json describes that run's model: not to be rewritten
    raise CheckpointError(f"{ckpt_dir} holds training checkpoints (steps {trained}); save the "
                          "pretrained checkpoint into a new directory.")
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
  `config.scan_layers`), and the vocabulary description dict with its path resolved
  (`resolve_vocabulary`; a missing SentencePiece model is reported by `make_vocabulary`).
  """
  ckpt_dir = local_dir(ckpt_dir, "checkpoint")
  info = read_model_info(ckpt_dir)
  config = T5Config.from_dict(info["model_config"])
  steps = finalized_steps(ckpt_dir)
  if not steps:
    raise CheckpointError(f"{ckpt_dir} holds no complete checkpoint step (no finalised "
                          "<step>/params folder).")
  # Steps without params (an interrupted save): loading needs only params.
  unloadable = {s: m for s, m in incomplete_steps(ckpt_dir).items() if "params" in m}
  if step is None:
    step = steps[-1]
    later = [s for s in unloadable if s > step]
    if later:
      log.warning("%s: step(s) %s are incomplete (an interrupted save?); loading step %d, the "
                  "latest complete one.", ckpt_dir, later, step)
  elif step not in steps:
    if step in unloadable:
      raise CheckpointError(f"{ckpt_dir} step {step} is incomplete (it has no "
                            f"{', '.join(unloadable[step])}: an interrupted save?); complete "
                            f"steps: {steps}.")
    raise CheckpointError(f"{ckpt_dir} has no checkpoint at step {step}; available: {steps}.")
  params = restore_params(ckpt_dir, step, shardings)
  return config, params, resolve_vocabulary(info.get("vocabulary"), ckpt_dir, missing_ok=True)


def restore_params(ckpt_dir: str, step: int, shardings=None):
  """Restores the `params` item of one step (onto `shardings`, or as numpy arrays); a damaged
  step raises `unreadable_step_error`."""
  _quiet_orphaned_reads()
  try:
    return _restore_params(ckpt_dir, step, shardings)
  except FlanjaxError:
    raise
  except Exception as e:  # noqa: BLE001 (only read errors: _read_error)
    if not _read_error(e):
      raise
    raise unreadable_step_error(ckpt_dir, step, e, resume=False) from e


def _restore_params(ckpt_dir: str, step: int, shardings=None):
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


def _shape(x) -> tuple:
  """The shape of an array, a ShapeDtypeStruct or Orbax's ArrayMetadata."""
  shape = getattr(x, "shape", None)
  return tuple(np.shape(x) if shape is None else shape)


def param_mismatches(params, expected_shapes) -> str | None:
  """A one-line summary of parameters whose names or shapes differ, or None if all match."""
  got = {k: _shape(v) for k, v in _flat_names(params).items()}
  want = {k: _shape(v) for k, v in _flat_names(expected_shapes).items()}
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


def _is_io_error(err: BaseException) -> bool:
  """An OSError, or a TensorFlow I/O error (tf.data's iterator state: NotFoundError,
  ResourceExhaustedError for a full disk, PermissionDeniedError, ...), without importing TF."""
  return isinstance(err, OSError) or type(err).__module__.startswith("tensorflow")


class _OrbaxSaveErrorFilter(logging.Filter):
  """Drops Orbax's error logs of a failed background save (each thread logs the error with its
  traceback: hundreds of lines for a full disk): `TrainCheckpointManager` raises that failure
  as one CheckpointError naming the step and the cause. Also its warning on each save without
  metrics under keep_best (only evaluated steps have them; the others are kept by LatestN)."""

  PATTERNS = ("_SignalingThread.run() raised an exception", "in background save thread",
              "Save Finalize thread")
  NO_METRICS = "Requested `tracked_metric`; did not provide metrics."

  def filter(self, record: logging.LogRecord) -> bool:
    message = str(record.msg)
    if record.levelno < logging.ERROR:
      return message != self.NO_METRICS
    return not any(p in message for p in self.PATTERNS)


def _quiet_orbax_save_errors() -> None:
  logger = logging.getLogger("absl")
  if not any(isinstance(f, _OrbaxSaveErrorFilter) for f in logger.filters):
    logger.addFilter(_OrbaxSaveErrorFilter())


# How long a failed save's unfinished writes are waited for before its folder is removed (a full
# disk or a read-only folder fails them all within a second).
_FAILED_SAVE_WAIT_S = 60.0
_ORBAX_LOOP_VERSION = "0.12.8"  # the Orbax whose `_run_sync_via_new_loop` `_run_sync` replaces


def _finish_tasks(loop: asyncio.AbstractEventLoop, timeout: float) -> None:
  """Runs `loop` until the tasks still pending on it and its thread pool's calls have ended (at
  most `timeout` s), their exceptions retrieved: a coroutine's failure is raised at once, while
  the writes it started are still running and would call back into the loop."""
  deadline = time.monotonic() + timeout
  try:
    while (pending := asyncio.all_tasks(loop)) and time.monotonic() < deadline:
      done, _ = loop.run_until_complete(
          asyncio.wait(pending, timeout=deadline - time.monotonic()))
      for task in done:
        if not task.cancelled():
          task.exception()  # retrieved: the error raised is the coroutine's own
    if time.monotonic() < deadline:
      loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(),
                                               deadline - time.monotonic()))
  except Exception:  # noqa: BLE001 (waiting never replaces the coroutine's own error)
    pass


def _run_sync(coro):
  """Orbax's `asyncio_utils._run_sync_via_new_loop` (orbax-checkpoint 0.12.8 runs each
  coroutine of a save or restore on a new event loop, closed as soon as the coroutine returns or
  raises), except that the loop of a coroutine that failed is closed only after the tasks it
  started have ended (`_finish_tasks`, at most `_FAILED_SAVE_WAIT_S`).

  When one write of a save fails (a full disk, a read-only folder), the others are still
  running in TensorStore: with the loop closed, each of them ended with a "RuntimeError: Event
  loop is closed" traceback (calling back into the loop), and the tasks left unfinished printed
  "Task exception was never retrieved" when collected: hundreds of lines before flanjax's one.
  (asyncio.run also ends a loop's tasks before closing it, cancelling them; Orbax does not use
  it, to avoid that cancellation across threads.) A KeyboardInterrupt or a cancellation closes
  the loop at once, as in Orbax."""
  loop = asyncio.new_event_loop()
  try:
    asyncio.set_event_loop(loop)
    return loop.run_until_complete(coro)
  except Exception:
    _finish_tasks(loop, _FAILED_SAVE_WAIT_S)
    raise
  finally:
    asyncio.set_event_loop(None)
    loop.close()


def _finish_failed_orbax_tasks() -> None:
  """Installs `_run_sync` in Orbax (once; only in the orbax-checkpoint version it copies: with
  another, failed saves print Orbax's tracebacks again, which tests/test_checkpoints.py
  notices)."""
  from orbax.checkpoint._src import asyncio_utils
  current = getattr(asyncio_utils, "_run_sync_via_new_loop", None)
  if current is _run_sync or current is None or ocp.__version__ != _ORBAX_LOOP_VERSION:
    return
  asyncio_utils._run_sync_via_new_loop = _run_sync


def _wait_for_orbax_writes(timeout: float = _FAILED_SAVE_WAIT_S) -> None:
  """Waits (at most `timeout` s) for Orbax's save threads still running: Orbax reports a failed
  save with its first failed item and does not wait for the others, whose writes would
  otherwise go on creating files in the step's temporary folder after it is removed."""
  from orbax.checkpoint._src.futures import future
  thread_type = getattr(future, "_SignalingThread", None)
  if thread_type is None:
    return
  deadline = time.monotonic() + timeout
  for thread in threading.enumerate():
    if isinstance(thread, thread_type) and thread is not threading.current_thread():
      # Thread's own join: Orbax's re-raises the thread's error, reported already.
      threading.Thread.join(thread, max(0.0, deadline - time.monotonic()))


class TrainCheckpointManager:
  """The trainer's Orbax CheckpointManager: items params / opt_state / meta.

  Saves every `save_period` steps (asynchronously unless async_save=False), keeps the last
  `keep` checkpoints and, with keep_best > 0, also the best `keep_best` by `best_metric` (from
  the metrics passed to `save`). Only finalised steps holding all items are ever restored; a
  step that cannot be read, or saved, is a CheckpointError naming it. A failed save's writes
  still running are let end (`_run_sync`, `_wait_for_orbax_writes`) before its temporary folder
  is removed and the error raised: nothing else is printed, and nothing written after.
  """

  ITEMS = TRAIN_ITEMS

  def __init__(self, model_dir: str, *, save_period: int = 1000, keep: int | None = 3,
               keep_best: int = 0, best_metric: str | None = None, best_mode: str = "max",
               async_save: bool = True):
    from orbax.checkpoint import checkpoint_managers as cm
    if not is_int(save_period) or save_period <= 0:
      raise CheckpointError(f"checkpoint_period={save_period!r} must be an integer > 0.")
    if keep is not None and (not is_int(keep) or keep < 1):
      raise CheckpointError(f"keep_checkpoints={keep!r} must be an integer >= 1 (or None to keep "
                            "all).")
    if not is_int(keep_best) or keep_best < 0:
      raise CheckpointError(f"keep_best={keep_best!r} must be an integer >= 0.")
    if keep_best and not best_metric:
      raise CheckpointError("keep_best > 0 needs best_metric (an evaluation metric name).")
    if best_mode not in ("max", "min"):
      raise CheckpointError(f"best_mode={best_mode!r}: use 'max' or 'min'.")
    self.model_dir = local_dir(model_dir, "model_dir")
    # Before Orbax lists (and may delete) "steps" or cleans up "temporary" folders.
    check_no_foreign_entries(self.model_dir)
    self.save_period = save_period
    self._in_flight: int | None = None  # the step of an async save not known to be finished
    self._failed = False  # a save failed (reported): close() does not report it again
    _quiet_orbax_save_errors()
    _finish_failed_orbax_tasks()
    policies = [cm.LatestN(n=keep)]
    if keep_best:
      policies.append(cm.BestN(get_metric_fn=lambda m: m[best_metric], reverse=best_mode == "min",
                               n=keep_best, keep_checkpoints_without_metrics=False))
    # best_fn makes Orbax write each evaluated step's metrics into it and read them back when a
    # run resumes; without it they lived in memory only, and after a resume LatestN deleted the
    # best steps, whose metrics it no longer knew (BestN keeps only steps with metrics).
    best = ({"best_fn": lambda m: m[best_metric], "best_mode": best_mode} if keep_best else {})
    options = ocp.CheckpointManagerOptions(
        create=True, enable_async_checkpointing=async_save, **best,
        # The trainer decides when to save (period, end of run, SIGTERM) and passes force=True.
        preservation_policy=cm.AnyPreservationPolicy(policies),
        cleanup_tmp_directories=True)
    # Pageable host copies: an async save then holds the loop ~0.1 s instead of ~0.4 s for
    # T5-large's 3 GB on an H100 (Orbax's GPU default stages through pinned host buffers;
    # bench/save_blocking.py, NOTES row 144). The write itself takes as long either way.
    def tree_handler():
      return ocp.PyTreeCheckpointHandler(enable_pinned_host_transfer=False)
    self._mngr = ocp.CheckpointManager(
        self.model_dir, options=options,
        item_handlers={"params": tree_handler(), "opt_state": tree_handler(),
                       "meta": ocp.JsonCheckpointHandler()})

  def should_save(self, step: int) -> bool:
    return step % self.save_period == 0

  def latest_step(self) -> int | None:
    """The latest finalised step that holds params, opt_state and meta."""
    self._mngr.reload()
    orbax_steps = set(self._mngr.all_steps())
    steps = [s for s in finalized_steps(self.model_dir, self.ITEMS) if s in orbax_steps]
    return steps[-1] if steps else None

  def _save_failed(self, step: int, err: BaseException, orbax: bool = False) -> CheckpointError:
    """Cleans up the unfinished save of `step` and says what happened (earlier steps intact).
    `orbax`: Orbax's save failed (its writes still running are waited for first)."""
    self._failed = True
    self._in_flight = None
    if orbax:
      _wait_for_orbax_writes()
    self._remove_data_state(step)
    if jax.process_index() == 0:  # Orbax's temporary folder of the step (it never finalised)
      for tmp in glob.glob(os.path.join(glob.escape(self.model_dir), f"{step}{_TMP_SUFFIX}*")):
        shutil.rmtree(tmp, ignore_errors=True)
    good = [s for s in finalized_steps(self.model_dir, self.ITEMS) if s != step]
    latest = f"the latest is step {good[-1]}" if good else "there is none yet"
    full = "no space left" in str(err).lower() or "resource_exhausted" in str(err).lower()
    return CheckpointError(
        f"could not save checkpoint step {step} in {self.model_dir} ({summary(err)}); the "
        f"earlier checkpoints are intact ({latest}). "
        + ("Free disk space" if full else "Fix the cause")
        + " and rerun the same command to resume.")

  def _wait_in_flight(self) -> None:
    """Waits for the pending async save; its failure is reported as that step's."""
    try:
      self._mngr.wait_until_finished()
    except FlanjaxError:
      raise
    except Exception as e:  # noqa: BLE001 (any failure of the background save)
      if self._in_flight is None:
        raise
      raise self._save_failed(self._in_flight, e, orbax=True) from e
    self._in_flight = None

  def save(self, step: int, state, meta: dict, metrics: dict | None = None, force: bool = False):
    """Starts saving `state` (a TrainState) + `meta` at `step` (returns before the write ends
    when async). A failed save (e.g. a full disk) raises a CheckpointError naming its step."""
    del force  # the trainer only calls save when it wants a checkpoint
    if self._in_flight is not None:
      self._wait_in_flight()  # Orbax would; here its failure names the step it belongs to
    if step in self._mngr.all_steps():
      return False
    args = ocp.args.Composite(
        params=ocp.args.PyTreeSave(state.params),
        opt_state=ocp.args.PyTreeSave(state.opt_state),
        meta=ocp.args.JsonSave(meta))
    try:
      saved = self._mngr.save(step, args=args, metrics=metrics, force=True)
    except FlanjaxError:
      raise
    except Exception as e:  # noqa: BLE001 (any failure of the save: the step is not finalised)
      raise self._save_failed(step, e, orbax=True) from e
    self._in_flight = step
    self._prune_data_states(keep=step)
    return saved

  def _unreadable(self, step: int, err: BaseException) -> CheckpointError:
    return unreadable_step_error(self.model_dir, step, err)

  def read_meta(self, step: int) -> dict:
    """The `meta` item of `step` (cheap: nothing else is read)."""
    _quiet_orphaned_reads()
    try:
      restored = self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
      return _checked_meta(restored["meta"])
    except FlanjaxError:
      raise
    except Exception as e:  # noqa: BLE001 (only read errors: _read_error)
      if not _read_error(e):
        raise
      raise unreadable_step_error(self.model_dir, step, e, item="meta") from e

  def restore(self, step: int, abstract_state, shardings):
    """Restores (state, meta) at `step` onto `shardings` (any mesh)."""
    _quiet_orphaned_reads()
    try:
      return self._restore(step, abstract_state, shardings)
    except FlanjaxError:
      raise
    except Exception as e:  # noqa: BLE001 (only read errors: _read_error)
      if not _read_error(e):
        raise
      raise self._unreadable(step, e) from e

  def _restore(self, step: int, abstract_state, shardings):
    metadata = self._mngr.item_metadata(step)
    saved_params = getattr(metadata["params"], "tree", metadata["params"])
    if saved_params is not None:
      shown = param_mismatches(saved_params, abstract_state.params)
      if shown:
        raise CheckpointError(
            f"{self.model_dir} step {step} holds the parameters of another model than this "
            f"run's: {shown}. Resume with the model settings that wrote it (which its "
            f"{MODEL_INFO_FILE} should hold), or use a new --model_dir. The checkpoint is left "
            "as it is.")
    saved_opt = metadata["opt_state"]
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
    meta = _checked_meta(restored["meta"])
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
    `save` and `close` delete the states of steps Orbax no longer keeps.

    Every process learns what every other one met (the others wait for it in the Orbax save
    that follows): a failed write (e.g. a full disk) leaves nothing behind and raises a
    CheckpointError naming the step on every process; `save_fn` raising UnsaveableDataState
    (an iterator tf.data cannot serialise) on any process removes this step's state on every
    process and raises UnsaveableDataState on every one."""
    final = self._data_state_dir(step)
    tmp = final + ".tmp"
    err, unsaveable = None, None
    try:
      shutil.rmtree(tmp, ignore_errors=True)
      os.makedirs(tmp)
      save_fn(os.path.join(tmp, "state"))
      atomic_write(os.path.join(tmp, "info.json"), json.dumps(info))
      shutil.rmtree(final, ignore_errors=True)
      os.replace(tmp, final)
    except UnsaveableDataState as e:
      unsaveable = e
    except Exception as e:  # noqa: BLE001 (only I/O errors are reported as a failed save)
      if not _is_io_error(e):
        self._remove_data_state(step)  # nothing half-written, no empty step folder
        raise
      err = e
    # One collective: 0 written, 1 a failed write, 2 an iterator that cannot be saved.
    statuses = _process_statuses(2 if unsaveable else 1 if err is not None else 0)
    if 2 in statuses:
      self._remove_data_state(step)  # every process alike: no state of this step anywhere
      raise unsaveable or UnsaveableDataState(
          f"process {statuses.index(2)}'s data iterator cannot be saved; its log says why")
    if err is not None:
      raise self._save_failed(step, err) from err
    if 1 in statuses:
      raise self._save_failed(step, OSError(
          f"process {statuses.index(1)} could not write its data state; its log says why"))

  def _remove_data_state(self, step: int) -> None:
    """Removes this process's data state of `step` (finished or not) and the empty step folder."""
    final = self._data_state_dir(step)
    shutil.rmtree(final + ".tmp", ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    try:
      os.rmdir(os.path.dirname(final))
    except OSError:
      pass

  def read_data_state(self, step: int) -> dict | None:
    """This process's saved data state for `step`: `info` plus "prefix", or None if absent (or
    unreadable: the trainer then repositions the data stream by skipping batches)."""
    folder = self._data_state_dir(step)
    info_path = os.path.join(folder, "info.json")
    if not os.path.exists(info_path):
      return None
    try:
      with open(info_path) as f:
        info = json.load(f)
    except (OSError, ValueError):
      return None
    return {**info, "prefix": os.path.join(folder, "state")} if isinstance(info, dict) else None

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
    """Waits for the pending save (a failure raises a CheckpointError naming its step)."""
    self._wait_in_flight()

  def close(self):
    """Waits for the pending save, prunes the data states and closes Orbax's manager. After a
    reported save failure it only cleans up (the error was raised already)."""
    try:
      if self._failed:
        try:
          self._mngr.wait_until_finished()
        except Exception:  # noqa: BLE001 (reported already)
          pass
      else:
        self._wait_in_flight()
      self._prune_data_states()
    finally:
      try:
        self._mngr.close()
      except Exception:  # noqa: BLE001
        if not self._failed:
          raise


def _checked_meta(meta) -> dict:
  """A restored `meta` item, checked for what resuming needs."""
  if not isinstance(meta, dict):
    raise ValueError(f"meta is a {type(meta).__name__}, not a JSON object")
  for key in ("step", "batches_consumed"):
    if not is_int(meta.get(key)) or meta[key] < 0:
      raise ValueError(f"meta[{key!r}] is {meta.get(key)!r}, not an integer >= 0")
  return meta
