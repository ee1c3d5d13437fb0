"""`flanjax eval`: evaluate a checkpoint on seqio tasks or mixtures, per task and per cluster.

Generation metrics come from greedy (or beam) decoding through `seqio.Evaluator` (the task's
postprocessor and metric functions); option tasks are also scored by rank classification: every
option is scored by its log-likelihood given the input and the highest one wins. Params live on a
`data` x `model` mesh like in training; decoding and scoring are jitted, batched and padded to a
fixed batch size (one compilation per shape).

Plain-Python API (used by the quickstart and `flanjax heldout`):
  evaluate_tasks(config, params, vocabulary, tasks, split, output_dir, ...) -> results dict
The data side (seqio / TensorFlow) is imported inside the functions that need it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import functools
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gin
from flanjax import metrics as metrics_lib
from flanjax import reports
from flanjax.config import T5Config
from flanjax.errors import FlanjaxError

log = logging.getLogger("flanjax.evaluation")


class EvalError(FlanjaxError):
  """An evaluation request that cannot run as asked (bad task, split, checkpoint, flags)."""


# `evaluate` arguments that `flanjax eval` takes as flags of the same name (the others only as
# --gin.evaluate.NAME bindings).
EVAL_FLAGS = ("split", "num_shots", "templates", "max_examples", "batch_size",
              "max_decode_length", "decode_method", "num_beams", "alpha", "dtype")


class EvalSettingError(EvalError):
  """A bad `evaluate` argument: `name`, its `value` and the `problem`, in a message naming the
  flag and the gin binding (callers with other flag names rebuild it from the parts)."""

  def __init__(self, name: str, value: Any, problem: str):
    self.name, self.value, self.problem = name, value, problem
    flag = f"--{name}" if name in EVAL_FLAGS else f"--gin.evaluate.{name}"
    super().__init__(f"{flag}={value!r} (evaluate.{name}): {problem}")


# --------------------------------------------------------------------------- model functions


@dataclasses.dataclass
class ModelFns:
  """Sharded batch functions (flanjax.decoding, jitted there) over a fixed batch size.

  predict(tokens int32 [n, input_len]) -> int32 [n, max_decode_length]
  score(batch dict of [n, len] arrays) -> float32 [n] (sum of target log-probs)
  Rows are padded to a multiple of `batch_size` and lengths to `bucket_length` (zero pads are
  masked in attention and have loss weight 0; all-0 padding rows are done from the start of
  decoding), then run batch by batch. `num_beams` and `alpha` (length penalty) are beam
  search's (`decode_method="beam"`).
  """
  config: T5Config
  params: Any
  batch_size: int
  mesh: Any = None
  decode_method: str = "greedy"
  num_beams: int = 4
  alpha: float = 0.6

  def _batch_sharding(self):
    if self.mesh is None:
      return None
    from flanjax import partitioning
    return partitioning.batch_sharding(self.mesh)

  def _put(self, x: np.ndarray):
    """Places a host batch (the same full batch on every process) on the mesh, batch-sharded."""
    sharding = self._batch_sharding()
    if sharding is None:
      return jnp.asarray(x)
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  @staticmethod
  def _fetch(x) -> np.ndarray:
    if jax.process_count() > 1 and not x.is_fully_addressable:
      from jax.experimental import multihost_utils
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))

  def __post_init__(self):
    if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
      raise EvalError(f"batch_size={self.batch_size!r} (--batch_size): must be an integer >= 1.")
    check_eval_settings(decode_method=self.decode_method, num_beams=self.num_beams,
                        alpha=self.alpha)
    if self.mesh is not None:
      from flanjax import partitioning
      partitioning.check_batch_size(self.batch_size, self.mesh)

  def _mesh_context(self):
    return jax.set_mesh(self.mesh) if self.mesh is not None else contextlib.nullcontext()

  def predict(self, tokens: np.ndarray, max_decode_length: int) -> np.ndarray:
    from flanjax import decoding
    if max_decode_length < 1:
      raise EvalError(f"max_decode_length={max_decode_length} (--max_decode_length): must be an "
                      "integer >= 1.")
    out = []
    with self._mesh_context():
      for start in range(0, len(tokens), self.batch_size):
        chunk = _pad_length(_pad_rows(tokens[start:start + self.batch_size], self.batch_size))
        pred = decoding.predict(self.config, self.params, self._put(chunk),
                                max_decode_length=max_decode_length, method=self.decode_method,
                                num_beams=self.num_beams, alpha=self.alpha)
        out.append(self._fetch(pred)[:min(self.batch_size, len(tokens) - start)])
    if not out:
      return np.zeros((0, max_decode_length), np.int32)
    return np.concatenate(out)

  def score(self, batch: dict[str, np.ndarray]) -> np.ndarray:
    from flanjax import decoding
    n = len(batch["decoder_target_tokens"])
    out = []
    with self._mesh_context():
      for start in range(0, n, self.batch_size):
        chunk = {k: self._put(_pad_length(_pad_rows(v[start:start + self.batch_size],
                                                    self.batch_size)))
                 for k, v in batch.items()}
        scores = decoding.score(self.config, self.params, chunk)
        out.append(self._fetch(scores)[:min(self.batch_size, n - start)])
    if not out:
      return np.zeros((0,), np.float32)
    return np.concatenate(out).astype(np.float32)


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  x = np.asarray(x)
  if len(x) == rows:
    return x
  pad = np.zeros((rows - len(x),) + x.shape[1:], x.dtype)
  return np.concatenate([x, pad])


def bucket_length(n: int) -> int:
  """Length buckets that bound recompilation: powers of two up to 64, then multiples of 64."""
  if n <= 64:
    return max(8, 1 << (max(n, 1) - 1).bit_length())
  return -(-n // 64) * 64


def _pad_length(x: np.ndarray) -> np.ndarray:
  """Zero-pads the length axis of [batch, length] to its bucket (pads are masked / weight 0)."""
  x = np.asarray(x)
  target = bucket_length(x.shape[1])
  if target == x.shape[1]:
    return x
  return np.pad(x, [(0, 0), (0, target - x.shape[1])])


def _pad_cols(rows: Sequence[Sequence[int]], length: int) -> np.ndarray:
  out = np.zeros((len(rows), length), np.int32)
  for i, r in enumerate(rows):
    r = list(r)[:length]
    out[i, :len(r)] = r
  return out


def score_batch_from_targets(inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]],
                             input_len: int, target_len: int,
                             decoder_start_token_id: int = 0) -> dict[str, np.ndarray]:
  """An unpacked scoring batch (EncDecFeatureConverter fields) from token lists (EOS included)."""
  enc = _pad_cols(inputs, input_len)
  tgt = _pad_cols(targets, target_len)
  dec_in = np.full_like(tgt, decoder_start_token_id)
  dec_in[:, 1:] = tgt[:, :-1]  # shifted right, like seqio's autoregressive_inputs
  return {"encoder_input_tokens": enc, "decoder_input_tokens": dec_in,
          "decoder_target_tokens": tgt,
          "decoder_loss_weights": (tgt != 0).astype(np.float32)}


def make_mesh_and_shard(config: T5Config, params, mesh_shape=(-1, 1)):
  """Builds a (data, model) mesh and places `params` on it with the model's logical shardings."""
  from flanjax import partitioning
  mesh = partitioning.make_mesh(mesh_shape)
  check_params_match(config, params)
  shardings = partitioning.param_shardings(config, mesh)
  params = jax.tree.map(lambda x, s: jax.device_put(x, s), params, shardings)
  return mesh, params


def check_params_match(config: T5Config, params, where: str = "the checkpoint") -> None:
  """Raises EvalError when the param tree/shapes do not match the model built from `config`.

  The comparison is `checkpoints.param_mismatches`; the message adds the model's config.
  """
  from flanjax import checkpoints
  from flanjax import model as model_lib
  details = checkpoints.param_mismatches(params, model_lib.param_shapes(config))
  if details:
    raise EvalError(f"The parameters of {where} do not match the model config "
                    f"(d_model={config.d_model}, layers={config.num_encoder_layers}/"
                    f"{config.num_decoder_layers}, vocab={config.vocab_size}, "
                    f"scan_layers={config.scan_layers}): {details}. Evaluate with the config "
                    "saved in the checkpoint (no size overrides).")


# --------------------------------------------------------------------------- task resolution


def checkpoint_config(checkpoint: str) -> T5Config:
  """The model config of a flanjax checkpoint (flanjax_model.json) or a Hugging Face directory
  (config.json), without loading any parameter."""
  if os.path.isdir(checkpoint) and _is_hf_dir(checkpoint):
    from flanjax import convert
    return convert.hf_config(checkpoint)
  from flanjax import checkpoints
  return T5Config.from_dict(checkpoints.read_model_info(checkpoint)["model_config"])


def checkpoint_vocabulary(checkpoint: str) -> dict[str, Any] | None:
  """The vocabulary a checkpoint was trained with, as recorded (resolved; None if none): a
  flanjax checkpoint's flanjax_model.json, or a Hugging Face directory's spiece.model."""
  from flanjax import checkpoints
  if os.path.isdir(checkpoint) and _is_hf_dir(checkpoint):
    spm = os.path.join(checkpoint, "spiece.model")
    return ({"type": "sentencepiece", "path": spm, "extra_ids": 100}
            if os.path.exists(spm) else None)
  info = checkpoints.read_model_info(checkpoint).get("vocabulary")
  return checkpoints.resolve_vocabulary(info, checkpoint, missing_ok=True)


def check_task_vocabularies(tasks: Sequence[Any], vocabulary) -> None:
  """Refuses (EvalError) seqio tasks tokenized with another vocabulary than the checkpoint's
  `vocabulary` (a description dict or a seqio vocabulary): the model would read ids it never
  learned, and a report would mix the two (inputs tokenized with the task's, options scored
  with the checkpoint's). Compared are the type and the SentencePiece model; extra ids, which
  do not change the ids of text, are not, nor is a gs:// model (not readable here) or a
  vocabulary flanjax cannot describe (a custom class)."""
  from flanjax import checkpoints

  def describe(v):
    try:
      info = v if isinstance(v, dict) else checkpoints.vocabulary_info(v)
    except checkpoints.CheckpointError:  # a vocabulary class flanjax does not know
      return None
    return None if info is None else {k: x for k, x in info.items() if k != "extra_ids"}

  mine = describe(vocabulary)
  if mine is None:
    return
  other, same = {}, {}  # same: each distinct description compared once (a file read each)
  for task in tasks:
    theirs = describe(task.output_features["targets"].vocabulary)
    if theirs is None:
      continue
    key = tuple(sorted(theirs.items()))
    if key not in same:
      same[key] = checkpoints.same_vocabulary(mine, theirs, unreadable_ok=True)
    if not same[key]:
      other[task.name] = theirs
  if other:
    names = sorted(other)
    raise EvalError(
        f"task(s) {', '.join(names[:5])}{' ...' if len(names) > 5 else ''} are tokenized with "
        f"the vocabulary {other[names[0]]}, but the checkpoint's is {mine}: the model would "
        "read other token ids than it learned. Evaluate tasks registered with the checkpoint's "
        "vocabulary (or a checkpoint trained with theirs).")


def resolve_tasks(names: Sequence[str] | str, split: str) -> list[Any]:
  """seqio tasks of task/mixture names that have `split`; a clear error when none does."""
  import seqio
  if isinstance(names, str):
    names = [names]
  known = sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names()))
  tasks, seen = [], set()
  for name in names:
    try:
      provider = seqio.get_mixture_or_task(name)
    except ValueError:
      close = difflib.get_close_matches(name, known, n=3)
      raise EvalError(f"No task or mixture named {name!r}."
                      + (f" Closest: {', '.join(close)}." if close else
                         " Register yours with --module (see `flanjax eval --help`).")) from None
    subtasks = seqio.get_subtasks(provider)
    with_split = [t for t in subtasks if split in t.splits]
    if not with_split:
      available = sorted({s for t in subtasks for s in t.splits})
      raise EvalError(f"{name!r} has no {split!r} split in any of its {len(subtasks)} tasks "
                      f"(splits there: {available}); pass --split with one of those.")
    skipped = [t.name for t in subtasks if split not in t.splits]
    if skipped:
      log.warning("Skipping %d task(s) of %s without a %r split: %s", len(skipped), name, split,
                  skipped)
    for t in with_split:
      if t.name not in seen:
        seen.add(t.name)
        tasks.append(t)
  return tasks


def task_meta(task) -> dict[str, Any]:
  """Cluster, metric kind and own headline metric (None: the kind's) of a task
  (flanjax.registration.TASK_INFO; inferred otherwise)."""
  info = None
  try:
    from flanjax import registration
    info = registration.TASK_INFO.get(task.name)
  except ImportError:
    pass
  if info is not None:
    return {"cluster": getattr(info, "cluster", "unknown"), "metric": getattr(info, "metric", None),
            "headline": getattr(info, "headline", "") or None,
            "rank_metrics": getattr(info, "rank_metrics", "") or None}
  names = {getattr(f, "__name__", "") for f in task.metric_fns}
  kind = next((k for k in metrics_lib.METRIC_KINDS if k in names), None)
  return {"cluster": "unknown", "metric": kind, "headline": None, "rank_metrics": None}


def fewshot_task(task, num_shots: int) -> Any:
  """The k-shot variant of a flanjax-registered task (`registration.task_variant`)."""
  import seqio
  if num_shots <= 0:
    return task
  from flanjax import registration
  info = registration.TASK_INFO.get(task.name)
  base = (info.base or info.name or task.name) if info is not None else task.name
  if base not in getattr(registration, "_BUILDERS", {}):
    raise EvalError(f"Few-shot eval needs a task registered with flanjax.registration; "
                    f"{task.name!r} is not. Use --num_shots 0.")
  if registration.exemplar_split(task.splits) is None:
    raise EvalError(f"Few-shot eval of {task.name!r} draws exemplars from its 'train' split, "
                    f"which it lacks (splits: {list(task.splits)}). Use --num_shots 0.")
  # The variant's own format (scoring rows, no template, one template, no OPTIONS block), k-shot.
  return seqio.get_mixture_or_task(registration.task_variant(
      base, mode=info.mode, num_shots=num_shots, options=info.options_block,
      scoring=info.scoring, template=info.template))


# --------------------------------------------------------------------------- evaluation


def template_variants(task, num_shots: int = 0) -> dict[int | None, Any]:
  """{template index: the variant of `task` rendered with that direct template} (k-shot when
  `num_shots`), for `templates="each"`; {None: task} for a task with one format (a single
  direct template, no templates, or not registered with flanjax)."""
  import seqio

  from flanjax import registration
  info = registration.TASK_INFO.get(task.name)
  if info is not None and (info.template is not None or info.mode != "instruction"):
    return {None: fewshot_task(task, num_shots)}  # already one format
  base = (info.base or info.name or task.name) if info is not None else task.name
  direct = (registration.direct_templates(base)
            if base in getattr(registration, "_BUILDERS", {}) else [])
  if len(direct) < 2:
    return {None: fewshot_task(task, num_shots)}
  if num_shots and registration.exemplar_split(task.splits) is None:
    fewshot_task(task, num_shots)  # raises the few-shot error
  return {i: seqio.get_mixture_or_task(registration.task_variant(
      base, template=i, num_shots=num_shots, options=info is None or info.options_block,
      scoring=bool(info is not None and info.scoring))) for i in direct}


def _seqio_predict_fn(fns: ModelFns, max_decode_length: int):
  def predict_fn(ds, model_feature_shapes=None):
    del model_feature_shapes
    idx, toks = [], []
    for i, ex in ds.as_numpy_iterator():
      idx.append(int(i))
      toks.append(ex["encoder_input_tokens"])
    if not idx:
      return []
    out = fns.predict(np.stack(toks), max_decode_length)
    return list(zip(idx, [list(map(int, row)) for row in out]))
  return predict_fn


def _model_batch(ds) -> tuple[list[int], dict[str, np.ndarray]]:
  idx, rows = [], []
  for i, ex in ds.as_numpy_iterator():
    idx.append(int(i))
    rows.append(ex)
  keys = ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
          "decoder_loss_weights")
  batch = {k: np.stack([r[k] for r in rows]) for k in keys} if rows else {}
  return idx, batch


def _seqio_score_fn(fns: ModelFns):
  def score_fn(ds, model_feature_shapes=None):
    del model_feature_shapes
    idx, batch = _model_batch(ds)
    if not idx:
      return []
    return list(zip(idx, fns.score(batch).tolist()))
  return score_fn


def _text(x) -> str:
  return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def _rank_options(fns: ModelFns, task_examples: list[dict], vocab, input_len: int,
                  eos_id: int, decoder_start: int) -> tuple[list[list[float]], list[list[int]]] | None:
  """Scores every option of every example: (option scores, correct option indices) per example.

  None when the task's examples have no options (flanjax tasks carry an empty `options` list and
  `answer_index` -1 then). The correct options are the `answer_index` one and every option equal
  to one of the example's `references` (all its gold answers, e.g. ReCoRD's spellings of the
  answer entity); without `answer_index` (-1), also the options equal to the target.
  """
  if not task_examples or len(task_examples[0].get("options", ())) == 0:
    return None
  inputs, targets, owners, answers = [], [], [], []
  for i, ex in enumerate(task_examples):
    options = [_text(o) for o in ex.get("options", ())]
    if len(options) < 2:
      raise EvalError(f"Example {i} has {len(options)} option(s) while others have options; "
                      "rank classification needs at least 2 options per example.")
    answer = int(ex.get("answer_index", -1))
    golds = {_text(r) for r in ex.get("references", ())}
    target = _text(ex.get("targets_pretokenized", b""))
    if answer < 0:
      golds.add(target)
    correct = sorted({j for j, o in enumerate(options) if j == answer or o in golds})
    if not correct:
      raise EvalError(f"Example {i}: its target {target!r} is not one of its options {options}; "
                      "rank classification needs the answer among the options.")
    answers.append(correct)
    for o in options:
      inputs.append(list(ex["inputs"]))
      targets.append(list(vocab.encode(o)) + [eos_id])
      owners.append(i)
  target_len = max(len(t) for t in targets)
  batch = score_batch_from_targets(inputs, targets, input_len, target_len, decoder_start)
  scores = fns.score(batch)
  per_example: list[list[float]] = [[] for _ in task_examples]
  for owner, s in zip(owners, scores.tolist()):
    per_example[owner].append(s)
  return per_example, answers


EVAL_SEED = 42  # seqio.Evaluator's default seed (templates of eval examples depend on it)
DECODE_METHODS = ("greedy", "beam")  # ModelFns(decode_method=...), `--decode_method`
TEMPLATE_MODES = ("sampled", "each")  # evaluate_tasks(templates=...), `flanjax eval --templates`


def _is_rank_classification_task(task) -> bool:
  """A task with one row per (example, option) (flanjax's `scoring=True` variants; seqio tasks
  with score metrics, like T5's rank_classification ones, are checked by their rows' `idx`)."""
  info = None
  try:
    from flanjax import registration
    info = registration.TASK_INFO.get(task.name)
  except ImportError:
    pass
  return bool(getattr(info, "scoring", False) or getattr(task, "score_metric_fns", None))


def rows_of_examples(task, split: str, max_examples: int,
                     sequence_length: dict[str, int] | None = None) -> int:
  """The number of rows of a rank-classification task that hold its first `max_examples`
  examples, every option of each (seqio's Evaluator limits rows: `num_examples` rows).

  Rows of one example are adjacent and share `idx[0]` (`preprocessors.scoring_fn`, T5's
  rank_classification). A task whose rows have no [example, option] `idx` keeps
  `max_examples` (one row per example).
  """
  ds = task.get_dataset(sequence_length, split=split, shuffle=False, num_epochs=1,
                        seed=EVAL_SEED, use_cached=False)
  spec = ds.element_spec.get("idx") if isinstance(ds.element_spec, dict) else None
  if spec is None or spec.shape.as_list() != [2]:
    return max_examples
  rows, seen, last = 0, 0, None
  for example in ds.map(lambda ex: ex["idx"][0]).as_numpy_iterator():
    if example != last:
      seen, last = seen + 1, example
      if seen > max_examples:
        break
    rows += 1
  return rows


def _num_examples(examples: list[dict]) -> int:
  """Examples (not rows) of a task's eval data: a rank-classification row per option counts
  once per example."""
  idx = [ex.get("idx") for ex in examples]
  if examples and all(i is not None and np.shape(i) == (2,) for i in idx):
    return len({int(i[0]) for i in idx})
  return len(examples)


def evaluate_tasks(config: T5Config, params, vocabulary, tasks: Sequence[str] | str,
                   split: str = "validation", output_dir: str | None = None, *,
                   num_shots: int = 0, batch_size: int = 16, max_examples: int | None = None,
                   max_decode_length: int | None = None,
                   task_feature_lengths: dict[str, int] | None = None, mesh=None,
                   decode_method: str = "greedy", num_beams: int = 4, alpha: float = 0.6,
                   rank_classification: bool = True,
                   title: str | None = None, run_info: dict[str, Any] | None = None,
                   contamination: dict[str, Any] | None = None,
                   write_reports: bool = True, templates: str = "sampled") -> dict[str, Any]:
  """Evaluates `params` on tasks/mixtures; writes reports to `output_dir`; returns the results.

  Results: {"tasks": {task: {"cluster", "metric_kind", "metrics", "primary", "num_examples"}},
  "clusters": {cluster: {"score", "num_tasks", "tasks"}}, ...run_info}; metrics are 0-100.
  `vocabulary` (seqio vocabulary, the checkpoint's) encodes options for rank classification;
  None uses each task's own output vocabulary. `max_examples`: the first examples of each task;
  of a task with a row per option (a `scoring=True` variant) all rows of those examples.
  `templates`: "sampled" renders each example with one of its task's direct templates, drawn
  per example; "each" evaluates every direct template of a flanjax-registered task as a task of
  its own (FLAN's protocol: its metrics are then the mean over the templates, with each
  template's under `templates` and the best one under `best_template`), at that many times the
  cost. `num_beams` and `alpha` (length penalty) are beam search's (`decode_method="beam"`;
  `decoding.predict`).
  """
  check_eval_settings(templates=templates)
  fns = ModelFns(config, params, batch_size, mesh, decode_method, num_beams, alpha)
  if mesh is not None:
    from flanjax import partitioning
    partitioning.check_batch_size(batch_size, mesh)
  eval_tasks = resolve_tasks(tasks, split)
  check_task_vocabularies(eval_tasks, vocabulary)
  task_metrics, task_info, rows = {}, {}, []
  run = functools.partial(_evaluate_one, config, fns, vocabulary, split=split,
                          max_examples=max_examples, max_decode_length=max_decode_length,
                          task_feature_lengths=task_feature_lengths,
                          rank_classification=rank_classification)
  from flanjax import registration
  # A mixture with datasets that are not prepared: one error naming them all.
  def unprepared():
    return (registration.naming_unprepared_datasets(tasks, split) if isinstance(tasks, str)
            else contextlib.nullcontext())
  for task in eval_tasks:
    t0 = time.time()
    meta = task_meta(task)
    variants = (template_variants(task, num_shots) if templates == "each" else
                {None: fewshot_task(task, num_shots)})
    per_template, num_examples = {}, 0
    for template, run_task in variants.items():
      with unprepared():
        m, n, task_rows = run(task, run_task, meta)
      per_template[template], num_examples = m, n
      rows += [dict(r, template=template) if template is not None else r for r in task_rows]
    info = {**meta, "num_examples": num_examples}
    if None in per_template:
      task_metrics[task.name] = per_template[None]
    else:  # the mean over templates of each metric; each template's kept
      common = set.intersection(*(set(m) for m in per_template.values()))
      task_metrics[task.name] = {k: float(np.mean([m[k] for m in per_template.values()]))
                                 for k in sorted(common)}
      info["templates"] = {str(t): m for t, m in per_template.items()}
    task_info[task.name] = info
    log.info("%s: %s (%d examples%s, %.1fs)", task.name, task_metrics[task.name], num_examples,
             f" x {len(per_template)} templates" if None not in per_template else "",
             time.time() - t0)
  results = reports.task_results(task_metrics, task_info)
  # Flat views (for the trainer's periodic eval summaries and best-checkpoint metrics).
  results["metrics"] = {f"{t}/{k}": v for t, e in results["tasks"].items()
                        for k, v in e["metrics"].items()}
  results["cluster_scores"] = {c: e["score"] for c, e in results["clusters"].items()}
  results["mean_cluster_score"] = (float(np.mean(list(results["cluster_scores"].values())))
                                   if results["cluster_scores"] else None)
  results.update(split=split, num_shots=num_shots, templates=templates, title=title,
                 **dict(run_info or {}))
  if contamination is not None:
    results["contamination"] = contamination
  if output_dir and write_reports and jax.process_index() == 0:
    reports.write_eval_reports(output_dir, results, rows)
  if output_dir and write_reports:
    results["output_dir"] = output_dir  # for the caller (not in metrics.json)
  return results


def _evaluate_one(config: T5Config, fns: ModelFns, vocabulary, task, run_task, meta, *, split,
                  max_examples, max_decode_length, task_feature_lengths, rank_classification
                  ) -> tuple[dict[str, float], int, list[dict[str, Any]]]:
  """Evaluates `run_task` (`task` itself or one of its variants) -> (metrics, number of
  examples, predictions.jsonl rows)."""
  import seqio

  from flanjax import pipeline
  task_vocab = run_task.output_features["targets"].vocabulary
  if task_vocab.vocab_size > config.vocab_size:
    raise EvalError(f"Task {task.name!r} uses a vocabulary of {task_vocab.vocab_size} ids but the "
                    f"model has vocab_size={config.vocab_size}: the checkpoint does not match "
                    "this task's vocabulary.")
  if not run_task.metric_fns and not getattr(run_task, "score_metric_fns", None) and not (
      meta["metric"]):
    raise EvalError(f"Task {task.name!r} has no metric functions; register it with a metric.")
  # The Evaluator builds the task's dataset and reads all its examples once (then evaluates
  # from its memory cache): a TensorFlow error there (e.g. a preprocessor's int() on a string
  # field, or its Python `if` on a field, found tracing it) is one line naming the task and the
  # likely cause.
  sequence_length = dict(task_feature_lengths) if task_feature_lengths else None
  with pipeline.reading_examples(f"Task {task.name!r}"):
    num_rows = max_examples
    if max_examples and _is_rank_classification_task(run_task):
      # One row per option: limit whole examples, not rows (seqio takes the first rows).
      num_rows = rows_of_examples(run_task, split, max_examples, sequence_length)
    evaluator = seqio.Evaluator(
        run_task.name, seqio.EncDecFeatureConverter(pack=False), eval_split=split,
        sequence_length=sequence_length, num_examples=num_rows, seed=EVAL_SEED,
        use_memory_cache=True, async_compute_metrics=False)
  if run_task.name not in [t.name for t in evaluator.eval_tasks]:
    raise EvalError(f"seqio found nothing to evaluate in {task.name!r} (split {split!r}); does "
                    "it have metric functions?")
  shapes = evaluator.model_feature_shapes
  decode_len = max_decode_length or shapes["decoder_target_tokens"][0]
  input_len = shapes["encoder_input_tokens"][0]
  future, outputs = evaluator.evaluate(
      compute_metrics=True, predict_fn=_seqio_predict_fn(fns, decode_len),
      score_fn=_seqio_score_fn(fns))
  m = dict(future.result()[run_task.name])
  evaluator.close()
  examples = list(evaluator.cached_task_datasets[run_task.name].as_numpy_iterator())
  # Per-example log-likelihood of the reference target (for predictions.jsonl).
  idx, model_batch = _model_batch(evaluator.cached_model_datasets[run_task.name])
  target_scores = fns.score(model_batch) if idx else np.zeros((0,), np.float32)
  option_scores = None
  if rank_classification and "rank_accuracy" not in m:
    ranked = _rank_options(fns, examples, vocabulary or task_vocab, input_len,
                           config.eos_token_id, config.decoder_start_token_id)
    if ranked is not None:
      option_scores, answers = ranked
      m.update(metrics_lib.rank_options(option_scores, answers))
      if meta.get("rank_metrics"):  # e.g. MultiRC's F1a / EM from the same winners
        winners = [int(np.argmax(s)) for s in option_scores]
        m.update(metrics_lib.rank_task_metrics(meta["rank_metrics"], examples, winners))
  metrics = {k: float(getattr(v, "value", v)) for k, v in m.items()}
  rows = []
  predicted = outputs[run_task.name].get(seqio.metrics.ModelOutputType.PREDICTION)
  for i, ex in enumerate(examples):
    row = {"task": task.name, "input": _text(ex.get("inputs_pretokenized", "")),
           "target": _text(ex.get("targets_pretokenized", "")),
           "score": float(target_scores[i]) if i < len(target_scores) else None}
    if int(ex.get("template", -1)) >= 0:  # the template it was rendered with
      row["template"] = int(ex["template"])
    if predicted is not None:
      row["prediction"] = task_vocab.decode(list(map(int, predicted[i])))
    if option_scores is not None:
      row["option_scores"] = option_scores[i]
      row["rank_prediction"] = _text(ex["options"][int(np.argmax(option_scores[i]))])
    rows.append(row)
  return metrics, _num_examples(examples), rows


def _is_hf_dir(path: str) -> bool:
  return (os.path.exists(os.path.join(path, "config.json"))
          and not os.path.exists(os.path.join(path, "flanjax_model.json")))


def check_checkpoint_path(checkpoint: str, flag: str = "--checkpoint") -> None:
  """A clear error when `checkpoint` is a file (a checkpoint is a directory)."""
  if os.path.exists(checkpoint) and not os.path.isdir(checkpoint):
    raise EvalError(f"{flag} {checkpoint} is a file, not a directory; give the checkpoint "
                    "directory (the one holding flanjax_model.json and the step folders, or a "
                    "Hugging Face directory with config.json).")


def latest_step(checkpoint: str) -> int | None:
  """The step `load_checkpoint(checkpoint)` restores: 0 for a HF directory, else the latest
  finalized step (None when there is none: loading then fails with the reason)."""
  if os.path.isdir(checkpoint) and _is_hf_dir(checkpoint):
    return 0
  from flanjax import checkpoints
  steps = checkpoints.finalized_steps(checkpoint)
  return steps[-1] if steps else None


def default_output_dir(checkpoint: str, split: str, num_shots: int, step: int,
                       templates: str = "sampled") -> str:
  """`<checkpoint>/eval_<split>[_<k>shot][_each_template]_step<N>`."""
  return os.path.join(checkpoint, f"eval_{split}" + (f"_{num_shots}shot" if num_shots else "")
                      + ("_each_template" if templates == "each" else "") + f"_step{step}")


def check_output_dir(output_dir: str, overwrite: bool = False, clusters: Sequence[str] = (),
                     what: str = "--output_dir") -> str:
  """Before any model is loaded: `output_dir` is a writable folder without earlier results.

  Earlier results (metrics.json, metrics.md, predictions.jsonl, the charts) are refused unless
  `overwrite`; files flanjax did not write there are never replaced or removed.
  """
  from flanjax import checkpoints
  output_dir = checkpoints.local_dir(output_dir, "--output_dir")
  existing = reports.existing_eval_reports(output_dir, clusters)
  if existing and not overwrite:
    held = ("the results of an earlier evaluation" if "metrics.json" in existing
            else "files named as an evaluation's reports")
    raise EvalError(f"{what} {output_dir} already holds {held} ({', '.join(existing)}); pass "
                    "--overwrite to replace them, or choose another --output_dir.")
  return reports.check_writable_dir(output_dir, what)


def load_checkpoint(checkpoint: str, step: int | None = None, mesh_shape=(-1, 1),
                    dtype: str | None = None):
  """(config, params on a mesh, vocabulary, mesh, step) from a checkpoint directory.

  A flanjax checkpoint (flanjax_model.json + steps), or a local Hugging Face T5 directory
  (config.json + weights, converted on the fly; its spiece.model is the vocabulary).
  dtype: overrides the compute dtype of the saved config (e.g. "float32"; params are unchanged).
  """
  from flanjax import checkpoints, partitioning

  check_checkpoint_path(checkpoint)
  mesh = partitioning.make_mesh(mesh_shape)
  if os.path.isdir(checkpoint) and _is_hf_dir(checkpoint):
    from flanjax import convert
    config, params = convert.load_hf(checkpoint)
    config = config.replace(dtype=dtype) if dtype else config
    check_params_match(config, params, checkpoint)
    params = jax.tree.map(jax.device_put, params, partitioning.param_shardings(config, mesh))
    vocabulary = checkpoints.make_vocabulary(checkpoint_vocabulary(checkpoint))
    return config, params, vocabulary, mesh, 0
  info = checkpoints.read_model_info(checkpoint)
  # Before the (long) restore: a SentencePiece model that is gone is one line naming it.
  vocab_info = checkpoints.resolve_vocabulary(info.get("vocabulary"), checkpoint)
  config = T5Config.from_dict(info["model_config"])
  shardings = partitioning.param_shardings(config, mesh)
  try:
    config, params, _ = checkpoints.load_pretrained(checkpoint, step, shardings=shardings)
  except checkpoints.CheckpointError:
    raise
  except (ValueError, KeyError, TypeError) as e:
    raise EvalError(f"Could not restore {checkpoint} onto the model of its own config "
                    f"(does the checkpoint match its flanjax_model.json?): {e}") from e
  config = config.replace(dtype=dtype) if dtype else config
  check_params_match(config, params, checkpoint)
  if step is None:
    step = checkpoints.finalized_steps(checkpoint)[-1]
  vocabulary = checkpoints.make_vocabulary(vocab_info) if vocab_info else None
  return config, params, vocabulary, mesh, step


def run_contamination_check(eval_tasks: Sequence[str], train_mixture: str, split: str, *,
                            n: int = 13, threshold: float = 0.01,
                            max_train_examples: int | None = 20000,
                            max_eval_examples: int | None = None) -> dict[str, Any]:
  """n-gram overlap between eval inputs and the training mixture's inputs; warns over threshold."""
  from flanjax import contamination as cont
  index = cont.NgramIndex(n)
  for rows in cont.task_texts(train_mixture, "train", ("inputs_pretokenized",),
                              max_examples=max_train_examples).values():
    index.add_all(row[0] for row in rows)  # a task at a time: its boilerplate is its own
  # The evaluated texts: the templates evaluation draws (EVAL_SEED).
  eval_inputs = {t.name: cont.mixture_inputs(t.name, split, max_examples=max_eval_examples,
                                             seed=EVAL_SEED)
                 for t in resolve_tasks(eval_tasks, split)}
  report = cont.overlap_report(eval_inputs, index, threshold=threshold)
  report["train_mixture"] = train_mixture
  cont.log_warnings(report, log)
  return report


@gin.configurable(denylist=["checkpoint", "tasks"])
def evaluate(checkpoint: str, tasks: Sequence[str] | str, *, output_dir: str | None = None,
             split: str = "validation", step: int | None = None, num_shots: int = 0,
             batch_size: int = 16, max_examples: int | None = None,
             max_decode_length: int | None = None, task_feature_lengths: dict | None = None,
             mesh_shape: Sequence[int] = (-1, 1), decode_method: str = "greedy",
             num_beams: int = 4, alpha: float = 0.6,
             dtype: str | None = None, tfds_data_dir: str | None = None,
             contamination_mixture: str | None = None,
             contamination_threshold: float = 0.01, overwrite: bool = False,
             templates: str = "sampled") -> dict[str, Any]:
  """Restores a flanjax checkpoint and evaluates it; reports go to `output_dir`.

  Default output_dir: `<checkpoint>/eval_<split>[_<k>shot][_each_template]_step<N>` (N: the
  evaluated step). Earlier results there are refused unless `overwrite` (checked before the
  checkpoint loads). `templates`, `num_beams`, `alpha`: see `evaluate_tasks`.
  """
  check_eval_settings(batch_size=batch_size, max_examples=max_examples,
                      max_decode_length=max_decode_length, num_shots=num_shots,
                      templates=templates, decode_method=decode_method, split=split,
                      task_feature_lengths=task_feature_lengths, num_beams=num_beams,
                      alpha=alpha)
  if tfds_data_dir:
    import seqio
    seqio.set_tfds_data_dir_override(tfds_data_dir)
  _import_catalog()
  check_checkpoint_path(checkpoint)
  if step is None:  # fixed now, so that the default output_dir names the step that is loaded
    step = latest_step(checkpoint)
  what = "--output_dir" if output_dir else "the default --output_dir"
  if not output_dir and step is not None:  # under the checkpoint, a local path already
    output_dir = default_output_dir(checkpoint, split, num_shots, step, templates)
  if output_dir:  # refused before the (possibly large) checkpoint is loaded
    clusters = sorted({task_meta(t)["cluster"] for t in resolve_tasks(tasks, split)})
    output_dir = check_output_dir(output_dir, overwrite, clusters, what)
  if os.path.isdir(checkpoint):  # also before the load (load_checkpoint explains a bad path)
    check_task_vocabularies(resolve_tasks(tasks, split), checkpoint_vocabulary(checkpoint))
  config, params, vocabulary, mesh, step = load_checkpoint(checkpoint, step, mesh_shape, dtype)
  if not output_dir:
    output_dir = check_output_dir(default_output_dir(checkpoint, split, num_shots, step, templates),
                                  overwrite, what=what)
  report = None
  if contamination_mixture:
    report = run_contamination_check(tasks, contamination_mixture, split,
                                     threshold=contamination_threshold,
                                     max_eval_examples=max_examples)
  return evaluate_tasks(config, params, vocabulary, tasks, split, output_dir, num_shots=num_shots,
                        batch_size=batch_size, max_examples=max_examples,
                        max_decode_length=max_decode_length,
                        task_feature_lengths=task_feature_lengths,
                        mesh=mesh, decode_method=decode_method, num_beams=num_beams,
                        alpha=alpha, run_info={"checkpoint": os.path.abspath(checkpoint), "step": step,
                                  # settings that change the numbers (num_shots, split and
                                  # templates are recorded by evaluate_tasks)
                                  "max_examples": max_examples,
                                  "max_decode_length": max_decode_length,
                                  "task_feature_lengths": task_feature_lengths,
                                  "decode_method": decode_method, "num_beams": num_beams,
                                  "alpha": alpha, "dtype": dtype},
                        contamination=report, templates=templates)


def check_eval_settings(*, batch_size: int = 16, max_examples: int | None = None,
                        max_decode_length: int | None = None, num_shots: int = 0,
                        templates: str = "sampled", decode_method: str = "greedy",
                        split: str = "validation", task_feature_lengths: dict | None = None,
                        num_beams: int = 4, alpha: float = 0.6) -> None:
  """EvalSettingError naming the flag (and gin binding) of an `evaluate` setting that cannot
  work, before anything is loaded."""
  for name, value, minimum in (("batch_size", batch_size, 1), ("max_examples", max_examples, 1),
                               ("max_decode_length", max_decode_length, 1),
                               ("num_shots", num_shots, 0), ("num_beams", num_beams, 1)):
    if value is None and name in ("max_examples", "max_decode_length"):
      continue
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
      raise EvalSettingError(name, value, f"must be an integer >= {minimum}" + (
          " (leave it unset for all examples)." if name == "max_examples" else "."))
  for name, value, choices in (("templates", templates, TEMPLATE_MODES),
                               ("decode_method", decode_method, DECODE_METHODS)):
    if value not in choices:
      raise EvalSettingError(name, value, f"use one of {', '.join(choices)}.")
  from flanjax import decoding
  if not decoding.valid_alpha(alpha):
    raise EvalSettingError("alpha", alpha, "beam search's length penalty must be a number >= 0 "
                           "(0: none; T5's default 0.6).")
  if not isinstance(split, str) or not split:
    raise EvalSettingError("split", split, "give a split name, e.g. validation.")
  lengths = task_feature_lengths
  if lengths is not None and not (isinstance(lengths, dict) and lengths and all(
      isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
      for v in lengths.values())):
    raise EvalSettingError("task_feature_lengths", lengths, "give a dict of positive lengths, "
                           "e.g. {'inputs': 512, 'targets': 64}, or leave it unset.")


def _import_catalog() -> None:
  """Registers flanjax's tasks and mixtures (the data side), if installed."""
  for mod in ("flanjax.tasks", "flanjax.mixtures"):
    try:
      __import__(mod)
    except ImportError as e:
      log.warning("Could not import %s: %s", mod, e)


def build_parser() -> argparse.ArgumentParser:
  from flanjax import gin_config
  from flanjax.cli import FlagParser
  p = FlagParser(prog="flanjax eval", description=(
      "Evaluate a flanjax checkpoint (or a converted HF checkpoint) on a task or mixture: "
      "generation metrics and rank classification, per task and per cluster (0-100). "
      "evaluate(...) arguments can also be set with --gin.evaluate.NAME=VALUE."))
  # --gin_file, --gin_search_paths, --model_dir, --tfds_data_dir
  gin_config.add_common_flags(p, model_dir_help="the checkpoint to evaluate (= --checkpoint)")
  p.add_argument("--checkpoint", help="flanjax checkpoint directory (same as --model_dir)")
  what = p.add_mutually_exclusive_group(required=True)
  what.add_argument("--task", action="append", help="task name (repeatable)")
  what.add_argument("--mixture", help="mixture name")
  # Defaults are None: an unset flag leaves evaluate()'s gin binding (or its default) in force.
  from flanjax.cli import fraction, int_at_least, positive_int
  p.add_argument("--split", default=None, help="default: validation")
  p.add_argument("--step", type=int_at_least(0), default=None,
                 help="checkpoint step (default: latest)")
  p.add_argument("--num_shots", type=int_at_least(0), default=None, help="default: 0")
  p.add_argument("--templates", default=None, choices=TEMPLATE_MODES,
                 help="sampled (default): one of a task's templates per example; each: every "
                      "template evaluated as a task of its own (FLAN's protocol), reporting "
                      "their mean and each template's, at that many times the cost")
  p.add_argument("--output_dir", default=None,
                 help="where to write reports (default: <checkpoint>/eval_<split>_step<N>)")
  p.add_argument("--overwrite", action="store_true",
                 help="replace the results of an earlier evaluation in --output_dir (other "
                      "files there are always kept)")
  p.add_argument("--max_examples", type=positive_int, default=None,
                 help="examples per task, >= 1 (default: all of them)")
  p.add_argument("--batch_size", type=positive_int, default=None, help="default: 16")
  p.add_argument("--max_decode_length", type=positive_int, default=None,
                 help="tokens to generate (default: the task's target length)")
  p.add_argument("--mesh_shape", default=None, help="data,model (default -1,1; e.g. 2,4)")
  p.add_argument("--decode_method", default=None, choices=DECODE_METHODS,
                 help="default: greedy")
  add_beam_flags(p)
  p.add_argument("--dtype", default=None, help="compute dtype override, e.g. float32")
  p.add_argument("--contamination_mixture", default=None,
                 help="training mixture to check 13-gram overlap against before evaluating")
  p.add_argument("--contamination_threshold", type=fraction, default=None,
                 help="a fraction in [0, 1] (default: 0.01)")
  from flanjax import catalog
  catalog.add_module_flag(p)
  return p


def add_beam_flags(parser: argparse.ArgumentParser) -> None:
  """--num_beams and --alpha (beam search's settings; default None: evaluate's 4 and 0.6)."""
  from flanjax.cli import float_at_least, positive_int
  parser.add_argument("--num_beams", type=positive_int, default=None,
                      help="with --decode_method beam: beams kept, >= 1 (default 4)")
  parser.add_argument("--alpha", type=float_at_least(0.0), default=None,
                      help="with --decode_method beam: length penalty alpha >= 0, scores "
                           "log p / ((5 + length) / 6) ** alpha (default 0.6, T5's; 0: none)")


def check_beam_flags(num_beams: int | None, alpha: float | None, decode_method: str,
                     error: type[FlanjaxError] = EvalError, bound: Sequence[str] = ()) -> None:
  """`error` when --num_beams / --alpha are given, or bound by gin (`bound`: the parameters of
  `evaluate` bound, "num_beams" / "alpha"), but the decode method is not beam search (they
  would silently do nothing)."""
  given = [f for f, v in (("--num_beams", num_beams), ("--alpha", alpha)) if v is not None]
  given += [f"--gin.evaluate.{p}" for p in ("num_beams", "alpha") if p in bound
            and f"--{p}" not in given]
  if given and decode_method != "beam":
    raise error(f"{' and '.join(given)} set beam search, but --decode_method is "
                    f"{decode_method!r}: add --decode_method beam, or drop them.")


def parse_mesh_shape(text: str) -> tuple[int, ...]:
  """`"-1,1"` -> (-1, 1); a FlanjaxError (EvalError) naming the flag otherwise."""
  try:
    return tuple(int(x) for x in text.split(","))
  except ValueError:
    raise EvalError(f"--mesh_shape={text!r}: use comma-separated ints like -1,1 or 2,4."
                    ) from None


def main(argv: Sequence[str] | None = None) -> int:
  """`flanjax eval` (flags: see --help; `--gin.evaluate.X=Y` bindings are accepted)."""
  import sys

  from flanjax import gin_config
  argv = list(sys.argv[1:] if argv is None else argv)
  bindings, argv = gin_config.split_gin_flags(argv)
  args = build_parser().parse_args(argv)
  checkpoint = args.checkpoint or args.model_dir
  if not checkpoint:
    raise EvalError("flanjax eval: give --checkpoint DIR (or --model_dir DIR).")
  if args.checkpoint and args.model_dir and args.checkpoint != args.model_dir:
    raise EvalError("Give either --checkpoint or --model_dir, not both.")
  from flanjax import catalog, distributed
  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  catalog.import_modules(args.module)
  gin_config.parse_gin(args.gin_file, bindings,
                       [p for p in args.gin_search_paths.split(",") if p])
  logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
  ignored = gin_config.bound_parameters(("T5Config", "t5_config", "OptimizerConfig", "train"))
  if ignored:  # e.g. a training run's gin files passed on as they are
    log.warning("eval uses only evaluate.* bindings; ignored: %s (the model and its settings are "
                "the checkpoint's flanjax_model.json; --dtype sets the compute dtype).",
                ", ".join(ignored[:6]) + (f" and {len(ignored) - 6} more" if len(ignored) > 6
                                          else ""))
  # Gin's beam settings beside gin's own `evaluate.decode_method = "beam"` are a configuration
  # that --decode_method greedy may override; without it they would do nothing.
  gin_method = gin_config.bound_value("evaluate", "decode_method", "greedy")
  check_beam_flags(args.num_beams, args.alpha, args.decode_method or gin_method, bound=[
      p for p in ("num_beams", "alpha")
      if gin_method != "beam" and gin_config.bound_value("evaluate", p) is not None])
  flags = dict(output_dir=args.output_dir, overwrite=args.overwrite or None, split=args.split,
               step=args.step, num_shots=args.num_shots, templates=args.templates,
               batch_size=args.batch_size,
               max_examples=args.max_examples, max_decode_length=args.max_decode_length,
               mesh_shape=parse_mesh_shape(args.mesh_shape) if args.mesh_shape else None,
               decode_method=args.decode_method, num_beams=args.num_beams, alpha=args.alpha,
               dtype=args.dtype,
               tfds_data_dir=args.tfds_data_dir,
               contamination_mixture=args.contamination_mixture,
               contamination_threshold=args.contamination_threshold)
  # Only the flags given: gin bindings (--gin.evaluate.X=Y, gin files) apply to the rest.
  kwargs = {k: v for k, v in flags.items() if v is not None}
  try:
    results = evaluate(checkpoint, args.task or args.mixture, **kwargs)
  except FlanjaxError as e:  # gin appends "In call to configurable ..." lines: keep one line
    lines = str(e).splitlines()
    if len(lines) <= 1:
      raise
    cls = type(e).__mro__[1] if type(e).__name__ == type(e).__mro__[1].__name__ else type(e)
    try:  # gin raises a proxy subclass of the original error: rebuild the original class
      short = cls(lines[0])
    except TypeError:
      short = EvalError(lines[0])
    raise short from None
  if jax.process_index() == 0:  # the process that wrote them (one table in a job's log)
    print(reports.markdown_table(results))
    if results.get("output_dir"):
      print(f"Wrote metrics.json, metrics.md, predictions.jsonl and the plots to "
            f"{results['output_dir']}")
  return 0
