"""`flanjax heldout`: the FLAN experiment, leave one task cluster out.

For a held-out cluster C of a collection P (default `flan2021`):
  1. contamination check: 13-gram overlap of `P_heldout_C`'s eval inputs with `P_without_C`'s
     training inputs (`<out>/C/contamination.json`, a warning above the threshold);
  2. "before": evaluate the starting checkpoint on `P_heldout_C` (`<out>/C/before/`);
  3. train from the starting checkpoint on `P_without_C` (`<out>/C/model/`, resumable);
  4. "after": evaluate the trained model on `P_heldout_C` (`<out>/C/after/`);
  5. the zero-shot gain after - before (`<out>/C/comparison.{json,md,png}`): the cluster's
     score, and per task (`tasks`: headline metric, before, after, gain) in the JSON.
The tasks evaluated are those of `P_heldout_C`; for flan2021 translation these are the 16
direction tasks (`flan2021_<key>_en_to_<lang>`, `flan2021_<key>_<lang>_to_en`), so BLEU is
reported per direction as FLAN does, not over the two directions mixed.
`--all` runs every cluster in turn (or, with `--emit_jobs`, prints one command per cluster for a
cluster launcher plus the `--collect` command) and then writes the cross-cluster comparison
(`<out>/comparison.{json,md,png}`). Every finished stage is found and skipped on a rerun when it
was made with the current settings: an evaluation's settings that change its numbers
(`EVAL_SETTINGS`: split, num_shots, templates, max_examples, ...; from the flags, else gin's
`evaluate.X` bindings, else evaluate's defaults) are those its metrics.json records (`evaluate`
writes them there), the contamination check's inputs those contamination.json records; a stage
recorded with other settings (or none) is redone, with a warning naming what changed. The
comparison states the settings both sides were evaluated with, and gives no gain where they
differ. The settings are checked before any stage runs, and so are training's data settings
(a resume's, as `train` checks them) and the start: a rerun from another starting checkpoint
than the cluster's model was trained from (recorded in its checkpoints), or at another
--model_size than `<out>/start`'s, is refused.
The command owns these folders: a rerun replaces an "after" evaluation of an older step (or of
other settings) and an unfinished "before" (or one of other settings) without asking for
--overwrite.

Without `--init_checkpoint` the run starts from a random initialisation of `--model_size`, saved
once to `<out>/start/` so that every cluster starts from the same weights.
"""
from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from flanjax import catalog, cli, reports
from flanjax.errors import FlanjaxError

log = logging.getLogger("flanjax.heldout")
COLLECTIONS = {"flan2021": "flan2021", "offline": "offline"}
# The arguments of `evaluation.evaluate` that change an evaluation's numbers, with its defaults
# (tests/test_heldout.py checks them against its signature). batch_size, mesh_shape and the
# output folder do not change them.
EVAL_SETTINGS = {"split": "validation", "num_shots": 0, "templates": "sampled",
                 "max_examples": None, "max_decode_length": None, "task_feature_lengths": None,
                 "decode_method": "greedy", "num_beams": 4, "alpha": 0.6, "dtype": None}
BEAM_SETTINGS = ("num_beams", "alpha")  # read by beam search only


def _beam_settings_used(settings: dict[str, Any]) -> dict[str, Any]:
  """`settings` with the beam settings None unless the decoding is beam search, which alone
  reads them (so a greedy evaluation by an earlier flanjax, which recorded none, still
  matches)."""
  if settings.get("decode_method", "beam") == "beam":  # beam, or not recorded at all
    return settings
  return {**settings, **{k: None for k in BEAM_SETTINGS}}


class HeldoutError(FlanjaxError):
  """A bad `flanjax heldout` request."""


def mixture_names(prefix: str, cluster: str) -> tuple[str, str]:
  """(training mixture without the cluster, held-out evaluation mixture)."""
  return f"{prefix}_without_{cluster}", f"{prefix}_heldout_{cluster}"


def available_clusters(prefix: str) -> list[str]:
  """Clusters C with both `<prefix>_without_C` and `<prefix>_heldout_C` registered."""
  import seqio
  names = set(seqio.MixtureRegistry.names()) | set(seqio.TaskRegistry.names())
  head = f"{prefix}_heldout_"
  return sorted(n[len(head):] for n in names
                if n.startswith(head) and f"{prefix}_without_{n[len(head):]}" in names)


def available_collections() -> list[str]:
  """Prefixes P with at least one cluster C (`P_without_C` and `P_heldout_C` registered)."""
  import seqio
  names = set(seqio.MixtureRegistry.names()) | set(seqio.TaskRegistry.names())
  return sorted({n.rsplit("_heldout_", 1)[0] for n in names if "_heldout_" in n
                 and "{}_without_{}".format(*n.rsplit("_heldout_", 1)) in names})


def check_collection(prefix: str, flag: str = "--collection") -> None:
  """A collection with no held-out clusters: one error listing those that have some."""
  if available_clusters(prefix):
    return
  known = available_collections()
  close = difflib.get_close_matches(prefix, known, n=1)
  raise HeldoutError(
      f"{flag} {prefix!r} has no held-out mixtures registered ({prefix}_heldout_<cluster> with "
      f"{prefix}_without_<cluster>); collections: {known}"
      + (f". Did you mean {close[0]!r}?" if close else
         " (register your own with --module or a gin file's import)."))


def check_cluster(prefix: str, cluster: str) -> None:
  check_collection(prefix, "collection")
  clusters = available_clusters(prefix)
  if cluster not in clusters:
    close = difflib.get_close_matches(cluster, clusters, n=2)
    raise HeldoutError(
        f"No held-out cluster {cluster!r} in collection {prefix!r} (needs mixtures "
        f"{prefix}_without_{cluster} and {prefix}_heldout_{cluster}); clusters: {clusters}"
        + (f". Did you mean {close[0]!r}?" if close else "."))


def _is_complete(path: str) -> bool:
  try:
    with open(path) as f:
      return bool(json.load(f).get("complete"))
  except (OSError, ValueError):
    return False


def starting_checkpoint(output_dir: str, init_checkpoint: str | None, model_size: str,
                        vocabulary, seed: int = 0, mixture: str | None = None,
                        eval_mixture: str | None = None, split: str = "validation") -> str:
  """The checkpoint every cluster starts from: `init_checkpoint`, else a saved random init.
  An `init_checkpoint` of another vocabulary than `mixture`'s (`vocabulary`) or
  `eval_mixture`'s is refused, as train and evaluate would refuse it (here before any stage)."""
  from flanjax import checkpoints
  if init_checkpoint:
    from flanjax import evaluation
    from flanjax import train as train_lib
    evaluation.check_checkpoint_path(init_checkpoint, "--init_checkpoint")
    info = checkpoints.read_model_info(init_checkpoint)  # clear error when not a checkpoint
    start_vocab = checkpoints.resolve_vocabulary(info.get("vocabulary"), init_checkpoint,
                                                 missing_ok=True)
    if mixture:
      try:
        train_lib.merge_init_vocabulary(start_vocab, checkpoints.vocabulary_info(vocabulary),
                                        init_checkpoint, mixture)
      except FlanjaxError as e:
        raise HeldoutError(str(e).replace("init_checkpoint ", "--init_checkpoint ", 1)) from None
    if eval_mixture:
      try:
        evaluation.check_task_vocabularies(evaluation.resolve_tasks(eval_mixture, split),
                                           start_vocab)
      except FlanjaxError as e:
        raise HeldoutError(f"--init_checkpoint {init_checkpoint}: {e}") from None
    return init_checkpoint
  from flanjax import config as config_lib
  start = os.path.join(output_dir, "start")
  vocab_size = -(-vocabulary.vocab_size // 128) * 128  # padded like T5's 32128
  config = config_lib.get_config(model_size, vocab_size=vocab_size)
  if checkpoints.finalized_steps(start):
    from flanjax import train as train_lib
    from flanjax.config import T5Config
    saved = T5Config.from_dict(checkpoints.read_model_info(start)["model_config"])
    diff = train_lib.model_differences(saved, config)
    if diff:
      detail = ", ".join(f"{f}={getattr(saved, f)!r}" for f in diff)
      raise HeldoutError(
          f"{start} holds the random initialisation this output_dir's clusters started from, "
          f"a model with {detail}; --model_size {model_size} differs. Rerun with the "
          "--model_size it was made with, or use a new --output_dir. Nothing was changed.")
    return start
  import jax

  from flanjax import model as model_lib
  params = jax.device_get(model_lib.init_params(config, jax.random.PRNGKey(seed)))
  if jax.process_count() > 1:  # Orbax coordinates the processes' writes into one folder
    checkpoints.save_pretrained(start, params, config, vocabulary, step=0)
    return start
  # --emit_jobs' jobs may start together: each writes its own folder and renames it into place;
  # a job that finds the start made by another meanwhile uses that one (the same seed and size).
  tmp = f"{start}.tmp-{os.getpid()}"
  checkpoints.save_pretrained(tmp, params, config, vocabulary, step=0)
  try:
    os.rename(tmp, start)
  except OSError:
    if not checkpoints.finalized_steps(start):
      raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return start


def run_cluster(cluster: str, *, output_dir: str, prefix: str = "flan2021",
                init_checkpoint: str | None = None, model_size: str = "small",
                train_kwargs: dict[str, Any] | None = None, eval_kwargs: dict[str, Any] | None = None,
                contamination_threshold: float = 0.01, contamination_max_train: int = 20000,
                seed: int = 0) -> dict[str, Any] | None:
  """Runs (or resumes) the held-out experiment for one cluster; returns its comparison row, or
  None when training stopped before its num_steps (preempted, or `stop_after_steps`).

  Training goes through gin's `train` configurable, so gin files / `--gin.train.X=Y` bindings
  apply (explicit `train_kwargs` win); evaluation through gin's `evaluate` likewise. A finished
  stage is reused only when it was made with the current settings (see the module doc).
  """
  from flanjax import evaluation

  eval_kwargs = dict(eval_kwargs or {})
  settings = eval_settings(eval_kwargs)
  check_eval_settings(settings, eval_kwargs)
  evaluation._import_catalog()
  check_cluster(prefix, cluster)
  train_mixture, eval_mixture = mixture_names(prefix, cluster)
  cdir = os.path.join(output_dir, cluster)
  split = settings["split"]
  evaluation.resolve_tasks(eval_mixture, split)  # clear error when there is no eval split

  model_dir = os.path.join(cdir, "model")
  start = init_checkpoint or os.path.join(output_dir, "start")  # what starting_checkpoint gives
  # Before `starting_checkpoint` may write <out>/start: a refused rerun changes nothing.
  check_resume(model_dir, start, {
      "mixture": train_mixture, "seed": seed,
      "task_feature_lengths": dict(_train_setting("task_feature_lengths", train_kwargs)),
      "pack": bool(_train_setting("pack", train_kwargs)),
      "batch_size": _train_setting("batch_size", train_kwargs)})
  cont_path = os.path.join(cdir, "contamination.json")
  check = {"eval_mixture": eval_mixture, "train_mixture": train_mixture, "split": split,
           "threshold": contamination_threshold, "max_train_examples": contamination_max_train,
           "max_eval_examples": settings["max_examples"]}
  before_dir, after_dir = os.path.join(cdir, "before"), os.path.join(cdir, "after")
  # What this run redoes, decided once: the contamination check, "before", then training and
  # "after" (a finished cluster redoes nothing).
  from flanjax import checkpoints
  cont_why = _contamination_stale(cont_path, _jsonable(check))
  # An --init_checkpoint folder that has gained steps since: its latest is the start now.
  start_steps = checkpoints.finalized_steps(start) if os.path.isdir(start) else []
  before_why = stage_stale(before_dir, settings, checkpoint=start,
                           step=start_steps[-1] if start_steps else None)
  steps = checkpoints.finalized_steps(model_dir)
  target = _train_setting("num_steps", train_kwargs)
  finished = (cont_why is None and before_why is None and os.path.exists(start) and bool(steps)
              and target is not None and steps[-1] >= target
              and stage_stale(after_dir, settings, step=steps[-1]) is None)
  # Every TFDS dataset either mixture reads, in one error, before <out>/start or any stage;
  # not for a finished cluster, whose rerun reads no data (its results are only collected).
  from flanjax import registration
  from flanjax import train as train_lib  # a gin train.tfds_data_dir too, as train reads it
  train_lib._set_tfds_data_dir(_train_setting("tfds_data_dir", train_kwargs), False)
  if not finished:
    registration.check_prepared([(train_mixture, "train"), (eval_mixture, split)])
  vocabulary = _mixture_vocabulary(train_mixture)
  start = starting_checkpoint(output_dir, init_checkpoint, model_size, vocabulary, seed,
                              mixture=train_mixture, eval_mixture=eval_mixture, split=split)

  if cont_why is not None:
    if cont_why:
      log.warning("%s: redoing the contamination check: %s.", cluster, cont_why)
    report = evaluation.run_contamination_check(
        eval_mixture, train_mixture, split, threshold=contamination_threshold,
        max_train_examples=contamination_max_train, max_eval_examples=settings["max_examples"])
    with reports.ReportWriter(cdir) as w:
      w.write_json("contamination.json", {**report, "check_settings": check, "complete": True},
                   last=True)
    over, checked = report.get("warn") or [], len(report.get("tasks", ()))
    print(f"{cluster}: contamination check ({report['n']}-grams of the training inputs): "
          + (f"{len(over)} of {checked} held-out tasks over the threshold "
             f"({', '.join(over)}; warned above)" if over
             else f"no held-out task over the threshold ({checked} checked)")
          + f"; {os.path.join(cdir, 'contamination.json')}", flush=True)

  if before_why is not None:
    if before_why:
      log.warning("%s/before: re-evaluating the starting checkpoint: %s.", cluster, before_why)
    evaluation.evaluate(start, eval_mixture, output_dir=before_dir, overwrite=True,
                        **eval_kwargs)
  print(f"{cluster}: training on {train_mixture}: {_recipe(train_kwargs)}", flush=True)
  _train(model_dir=model_dir, mixture=train_mixture, init_checkpoint=start, seed=seed,
         **dict(train_kwargs or {}))
  # Re-evaluate whenever the model moved on since the last "after" evaluation (or the settings
  # changed).
  last_step = checkpoints.finalized_steps(model_dir)[-1]
  if last_step < target:  # preempted (SIGTERM) or stop_after_steps: not the model to compare
    print(f"{cluster}: training stopped at step {last_step} of {target}; nothing was evaluated. "
          "Rerun the same command to resume.", flush=True)
    return None
  why = stage_stale(after_dir, settings, step=last_step)
  if why is None and checkpoints.finalized_steps(model_dir) != steps:
    why = "the model was trained since"  # e.g. retrained from scratch to the same step
  if why is not None:
    if why:
      log.warning("%s/after: re-evaluating: %s.", cluster, why)
    evaluation.evaluate(model_dir, eval_mixture, output_dir=after_dir, overwrite=True,
                        **eval_kwargs)
  changed = headline_changes(reports.read_metrics(before_dir), reports.read_metrics(after_dir))
  if changed:  # "before" was evaluated by a flanjax whose headline metric was another
    log.warning("%s/before: re-evaluating the starting checkpoint: its headline metrics differ "
                "from after's (%s).", cluster, ", ".join(
                    f"{t}: {b}, now {a}" for t, (b, a) in changed.items()))
    evaluation.evaluate(start, eval_mixture, output_dir=before_dir, overwrite=True,
                        **eval_kwargs)
  return collect_cluster(output_dir, cluster, prefix=prefix)


def check_resume(model_dir: str, start: str, data_settings: dict[str, Any]) -> None:
  """Refuses, before any stage runs, a rerun that would resume the cluster's model (its latest
  checkpoint's meta) from another starting checkpoint (`--init_checkpoint`, else
  `<out>/start`: the comparison would credit the gain to the new start) or with other data
  settings (batch size, lengths, seed, ...: train would refuse it after the evaluations)."""
  from flanjax import train as train_lib
  latest = train_lib.latest_meta(model_dir)
  if latest is None:
    return
  step, meta = latest
  recorded = meta.get(train_lib.INIT_KEY)  # older flanjax's checkpoints: not recorded, no check
  if train_lib.INIT_KEY in meta and recorded != train_lib.init_identity(start):
    raise HeldoutError(
        f"{model_dir} was trained (to step {step}) from {recorded or 'a random initialisation'}"
        f", but this run starts from {start}: rerun with the --init_checkpoint it was trained "
        "from, or use a new --output_dir. Nothing was changed.")
  try:
    train_lib._check_resume_settings(meta, model_dir, step, data_settings)
  except FlanjaxError as e:
    raise _heldout_error(e) from None


def _jsonable(x: Any) -> Any:
  """`x` as it reads back from JSON (tuples as lists; a gin reference as its text)."""
  return json.loads(json.dumps(x, sort_keys=True, default=str))


def _given_settings(eval_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
  """The `EVAL_SETTINGS` an `evaluation.evaluate(..., **eval_kwargs)` call runs with: the
  keyword arguments, else gin's `evaluate.X` bindings, else evaluate's defaults (as JSON)."""
  from flanjax import gin_config
  kw = eval_kwargs or {}
  return _jsonable({k: kw[k] if k in kw else gin_config.bound_value("evaluate", k, default)
                    for k, default in EVAL_SETTINGS.items()})


def eval_settings(eval_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
  """The `EVAL_SETTINGS` that make an evaluation's numbers (`_given_settings`, with the beam
  settings None unless it decodes by beam search)."""
  return _beam_settings_used(_given_settings(eval_kwargs))


def check_eval_settings(settings: dict[str, Any], eval_kwargs: dict[str, Any] | None = None
                        ) -> None:
  """`evaluation.check_eval_settings` on `settings` (and the batch size), before any stage runs:
  a bad value fails here, not after the contamination check and the first stage. The message
  names heldout's flag, or the gin binding where heldout has none."""
  from flanjax import evaluation, gin_config
  kw = eval_kwargs or {}
  batch_size = (kw["batch_size"] if "batch_size" in kw
                else gin_config.bound_value("evaluate", "batch_size", 16))
  given = _given_settings(eval_kwargs)  # evaluate checks the beam settings whatever decodes
  try:
    evaluation.check_eval_settings(
        batch_size=batch_size, **{k: settings[k] for k in (
            "max_examples", "max_decode_length", "num_shots", "templates", "decode_method",
            "split", "task_feature_lengths")}, **{k: given[k] for k in BEAM_SETTINGS})
  except evaluation.EvalSettingError as e:
    flag = {"max_examples": "--max_eval_examples", "batch_size": "--eval_batch_size",
            "split": "--split"}.get(e.name, f"--gin.evaluate.{e.name}")
    raise HeldoutError(f"{flag}={e.value!r} (evaluate.{e.name}): {e.problem}") from None


def recorded_settings(stage_dir: str) -> dict[str, Any]:
  """The `EVAL_SETTINGS` a stage's complete metrics.json records (`evaluate` writes them all; an
  evaluation by an earlier flanjax may lack some). {} when there is none."""
  try:
    metrics = reports.read_metrics(stage_dir)
  except (OSError, ValueError):
    return {}
  return _settings_in(metrics)


def _settings_in(metrics: dict[str, Any]) -> dict[str, Any]:
  """The `EVAL_SETTINGS` a metrics.json's contents record (as JSON)."""
  return _beam_settings_used(_jsonable({k: metrics[k] for k in EVAL_SETTINGS if k in metrics}))


def _describe(settings: dict[str, Any], names: Sequence[str]) -> str:
  return ", ".join(f"{k}={settings[k]!r}" if k in settings else f"{k} unrecorded" for k in names)


def stage_stale(stage_dir: str, settings: dict[str, Any], step: int | None = None,
                checkpoint: str | None = None) -> str | None:
  """Why a stage must be (re-)evaluated: None when its finished results can be reused (made with
  `settings`, and of `step` / of `checkpoint` when given), "" when it has none, else the
  reason."""
  if not _is_complete(os.path.join(stage_dir, reports.METRICS_JSON)):
    return ""
  metrics = reports.read_metrics(stage_dir)
  if checkpoint is not None:
    done = metrics.get("checkpoint")
    if not done or os.path.realpath(done) != os.path.realpath(checkpoint):
      return f"it evaluated {done or 'an unrecorded checkpoint'}, the start is now {checkpoint}"
  if step is not None and metrics.get("step") != step:
    return f"it evaluated step {metrics.get('step')}, the model is at step {step}"
  recorded = _settings_in(metrics)
  changed = [k for k in settings if recorded.get(k, object()) != settings[k]]
  if not changed:
    return None
  unrecorded = [k for k in changed if k not in recorded]
  if len(unrecorded) == len(changed):
    return (f"its evaluation settings ({', '.join(unrecorded)}) were not recorded (an earlier "
            "flanjax's evaluation)")
  return (f"it was evaluated with {_describe(recorded, changed)}, now "
          f"{_describe(settings, changed)}")


def _contamination_stale(path: str, check: dict[str, Any]) -> str | None:
  """Like `stage_stale` for contamination.json and the inputs of its check."""
  try:
    with open(path) as f:
      done = json.load(f)
  except (OSError, ValueError):
    return ""
  if not isinstance(done, dict) or not done.get("complete"):
    return ""
  old = done.get("check_settings")
  if not isinstance(old, dict):
    return "the inputs of the earlier check were not recorded (an earlier flanjax)"
  changed = [k for k in check if old.get(k, object()) != check[k]]
  if not changed:
    return None
  return f"it was made with {_describe(old, changed)}, now {_describe(check, changed)}"


def _train(**kwargs) -> None:
  """Calls `train` through gin (so gin bindings apply), with one-line user errors; the gin
  config it used is written to <model_dir>/config.gin, as `flanjax train` does."""
  import jax

  from flanjax import gin_config
  from flanjax.gin_config import gin
  gin_config.register()
  try:
    gin_config.check_operative_config_target(kwargs["model_dir"])
    gin.get_configurable("train")(**kwargs)
  except FlanjaxError as e:
    raise _heldout_error(e) from None
  if jax.process_index() == 0:
    gin_config.write_operative_config(kwargs["model_dir"], "flanjax heldout")


def _heldout_error(e: FlanjaxError) -> HeldoutError:
  """A train error as heldout's: one line (gin appends "In call to configurable ..." lines),
  naming heldout's --output_dir where train's names --model_dir (heldout's model is
  <output_dir>/<cluster>/model)."""
  from flanjax import train as train_lib
  return HeldoutError(train_lib.model_dir_as(str(e).splitlines()[0], "--output_dir"))


_RECIPE = ("num_steps", "batch_size", "task_feature_lengths")


def _recipe(train_kwargs: dict[str, Any] | None) -> str:
  """'1000 steps, batch 128, lengths 512/128', noting when these are all train's defaults (a
  short run, not FLAN's recipe)."""
  from flanjax import gin_config
  steps, batch, lengths = (_train_setting(n, train_kwargs) for n in _RECIPE)
  try:  # a dict, or train's default: its (name, length) pairs
    shown = "{inputs}/{targets}".format(**dict(lengths))
  except (TypeError, ValueError, KeyError):  # train checks the value and names what is wrong
    shown = repr(lengths)
  text = f"{steps} steps, batch {batch}, lengths {shown}"
  chosen = [n for n in _RECIPE if (train_kwargs and n in train_kwargs)
            or gin_config.bound_value("train", n) is not None]
  if not chosen:
    text += (" (train's defaults, a short run; FLAN's recipe: --gin_file runs/finetune.gin, "
             "30k steps at 1024/256)")
  return text


def _train_setting(name: str, train_kwargs: dict[str, Any] | None) -> Any:
  """The value `train` runs with: the keyword argument, else gin's `train.<name>` binding, else
  its default."""
  import inspect

  from flanjax import gin_config
  from flanjax import train as train_lib
  if train_kwargs and name in train_kwargs:
    return train_kwargs[name]
  return gin_config.bound_value("train", name,
                                inspect.signature(train_lib.train).parameters[name].default)


def _mixture_vocabulary(mixture: str):
  import seqio
  tasks = seqio.get_subtasks(seqio.get_mixture_or_task(mixture))
  return tasks[0].output_features["targets"].vocabulary


def headline_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple]:
  """{task: (before's headline metric, after's)} for the tasks whose two evaluations
  (metrics.json) headline different metrics (a flanjax version changed it between them)."""
  out = {}
  for t, a in after.get("tasks", {}).items():
    b = (before.get("tasks", {}).get(t) or {}).get("primary")
    a = (a or {}).get("primary")
    if a and b and a[0] != b[0]:
      out[t] = (b[0], a[0])
  return out


def task_comparison(before: dict[str, Any], after: dict[str, Any],
                    cluster: str) -> dict[str, dict[str, Any]]:
  """Per task of `cluster` in two evaluations (metrics.json): its headline metric, the score
  before and after, and the gain (None where a side has no score)."""
  names = sorted({t for m in (before, after) for t, v in m.get("tasks", {}).items()
                  if v.get("cluster") == cluster})
  rows = {}
  for t in names:
    b = (before.get("tasks", {}).get(t) or {}).get("primary")
    a = (after.get("tasks", {}).get(t) or {}).get("primary")
    bv, av = (float(b[1]) if b else None), (float(a[1]) if a else None)
    rows[t] = {"metric": (a or b or [None])[0], "before": bv, "after": av,
               "gain": None if av is None or bv is None else av - bv}
  return rows


def collect_cluster(output_dir: str, cluster: str, prefix: str = "flan2021") -> dict[str, Any]:
  """Writes `<out>/<cluster>/comparison.*` from its before/after metrics; returns the row.

  The row states the evaluation settings both sides were evaluated with (`eval_settings`); where
  a recorded setting, or the number of examples of a task, differs between them
  (`settings_differ`), `comparable` is False and there is no gain. `settings_unrecorded`: the
  settings a side does not record (`comparable` None then).
  """
  cdir = os.path.join(output_dir, cluster)
  before_dir, after_dir = os.path.join(cdir, "before"), os.path.join(cdir, "after")
  before = reports.read_metrics(before_dir)
  after = reports.read_metrics(after_dir)
  rows = reports.comparison(before, after)
  if cluster not in rows:
    raise HeldoutError(f"{cdir}: the evaluations have no cluster {cluster!r} (found "
                       f"{sorted(rows)}); are the tasks of {prefix}_heldout_{cluster} "
                       "registered with that cluster?")
  row = dict(rows[cluster])
  tasks = task_comparison(before, after, cluster)
  check = reports.settings_comparison(recorded_settings(before_dir),
                                      recorded_settings(after_dir), names=list(EVAL_SETTINGS))
  for t in tasks:  # the same settings read the same examples: a difference is a changed dataset
    b, a = ((m.get("tasks", {}).get(t) or {}).get("num_examples") for m in (before, after))
    if b is not None and a is not None and b != a:
      check["settings_differ"][f"num_examples of {t}"] = {"before": b, "after": a}
      check["comparable"] = False
  in_cluster = [{t for t, e in m.get("tasks", {}).items() if e.get("cluster") == cluster}
                for m in (before, after)]
  if in_cluster[0] != in_cluster[1]:  # e.g. the mixture gained a task: other cluster means
    check["settings_differ"]["tasks"] = {"before": sorted(in_cluster[0]),
                                         "after": sorted(in_cluster[1])}
    check["comparable"] = False
  for t, (b, a) in headline_changes(before, after).items():  # e.g. ReCoRD's F1, now rank acc.
    check["settings_differ"][f"headline of {t}"] = {"before": b, "after": a}
    check["comparable"] = False
  if check["comparable"] is False:
    row["gain"] = None
    for r in tasks.values():
      r["gain"] = None
    log.warning("%s: no gain: before and after were evaluated with different settings (%s); "
                "rerun `flanjax heldout --cluster %s` to re-evaluate them alike.", cluster,
                ", ".join(f"{k}: {v['before']!r} vs {v['after']!r}"
                          for k, v in check["settings_differ"].items()), cluster)
  row.update(after_step=after.get("step"), train_mixture=mixture_names(prefix, cluster)[0],
             eval_mixture=mixture_names(prefix, cluster)[1], tasks=tasks, **check)
  cont = os.path.join(cdir, "contamination.json")
  if os.path.exists(cont):
    with open(cont) as f:
      c = json.load(f)
    row["contaminated_tasks"] = c.get("warn", [])
  reports.write_comparison(cdir, {cluster: row}, title=f"Held-out cluster: {cluster}",
                           extra={"collection": prefix})
  return row


def collect_all(output_dir: str, clusters: Sequence[str], prefix: str) -> dict[str, Any]:
  """The cross-cluster comparison from finished clusters; names the unfinished ones."""
  rows, missing = {}, []
  for c in clusters:
    if _is_complete(os.path.join(output_dir, c, "after", reports.METRICS_JSON)) and \
        _is_complete(os.path.join(output_dir, c, "before", reports.METRICS_JSON)):
      rows[c] = collect_cluster(output_dir, c, prefix)
    else:
      missing.append(c)
  if not rows:
    raise HeldoutError(f"No finished cluster under {output_dir} (expected <cluster>/before and "
                       f"<cluster>/after with a complete metrics.json for {list(clusters)}).")
  title = f"{prefix}: zero-shot performance on held-out clusters"
  reports.write_comparison(output_dir, rows, title=title,
                           extra={"collection": prefix, "unfinished": missing})
  if missing:
    log.warning("Clusters not finished yet (left out of the comparison): %s", missing)
  return {"clusters": rows, "unfinished": missing}


def emit_jobs(argv: Sequence[str], clusters: Sequence[str]) -> list[str]:
  """One `flanjax heldout --cluster C ...` command per cluster, then the `--collect` command."""
  rest = [a for a in argv if a not in ("--all", "--emit_jobs", "--emit-jobs", "--collect")]
  base = ["flanjax", "heldout"] + rest
  cmds = [shlex.join(base + ["--cluster", c]) for c in clusters]
  cmds.append(shlex.join(base + ["--all", "--collect"]))
  return cmds


def build_parser() -> argparse.ArgumentParser:
  p = cli.FlagParser(prog="flanjax heldout", description=(
      "Leave-one-cluster-out: train on <collection>_without_<C>, evaluate zero-shot on "
      "<collection>_heldout_<C>, compare with the starting checkpoint. Besides the flags below, "
      "gin bindings are accepted: --gin.train.NAME=VALUE for any train(...) argument (e.g. "
      "--gin.train.label_smoothing=0.1) and --gin.evaluate.NAME=VALUE for any evaluate(...) "
      "argument (e.g. --gin.evaluate.templates=\"'each'\"); the flags win over them. A rerun "
      "skips the stages done with the same evaluation settings and redoes the others."))
  which = p.add_mutually_exclusive_group(required=True)
  which.add_argument("--cluster", help="the held-out cluster (e.g. nli)")
  which.add_argument("--all", action="store_true", help="every cluster of the collection")
  p.add_argument("--emit_jobs", "--emit-jobs", action="store_true",
                 help="with --all: print one command per cluster (and the collect command)")
  p.add_argument("--collect", action="store_true",
                 help="with --all: only gather finished clusters into the comparison")
  p.add_argument("--collection", default="flan2021",
                 help="mixture prefix: flan2021 (default), offline, or any registered prefix")
  p.add_argument("--output_dir", required=True)
  p.add_argument("--init_checkpoint", default=None,
                 help="starting checkpoint (default: a random init of --model_size)")
  from flanjax.cli import fraction, positive_int
  p.add_argument("--model_size", default=None,
                 help="size of the random start (default: small); not with --init_checkpoint")
  p.add_argument("--num_steps", type=positive_int, default=None)
  p.add_argument("--batch_size", type=positive_int, default=None)
  p.add_argument("--input_length", type=positive_int, default=None)
  p.add_argument("--target_length", type=positive_int, default=None)
  p.add_argument("--checkpoint_period", type=positive_int, default=None)
  p.add_argument("--eval_batch_size", type=positive_int, default=None,
                 help="default: evaluate.batch_size (gin) or 16")
  p.add_argument("--max_eval_examples", type=positive_int, default=None,
                 help="examples per task, >= 1 (default: evaluate.max_examples (gin), or all)")
  p.add_argument("--split", default=None, help="default: evaluate.split (gin) or validation")
  p.add_argument("--contamination_threshold", type=fraction, default=0.01,
                 help="warn when more than this fraction of a task's eval examples overlap")
  p.add_argument("--contamination_max_train", type=positive_int, default=20000,
                 help="training inputs read per task for the 13-gram index")
  p.add_argument("--seed", type=int, default=None,
                 help="the random start's and the data's seed (default: train.seed (gin) or 0)")
  p.add_argument("--tfds_data_dir", default=None)
  p.add_argument("--gin_file", action="append", default=[],
                 help="gin file (repeatable); its train.X / evaluate.X bindings apply, as do "
                      "--gin.train.X=VALUE / --gin.evaluate.X=VALUE flags")
  catalog.add_module_flag(p)
  return p


def main(argv: Sequence[str] | None = None) -> int:
  """`flanjax heldout --cluster C | --all [--emit_jobs | --collect]`."""
  from flanjax import evaluation, gin_config
  argv = list(sys.argv[1:] if argv is None else argv)
  bindings, rest = gin_config.split_gin_flags(argv)
  args = build_parser().parse_args(rest)
  if (args.emit_jobs or args.collect) and not args.all:
    raise HeldoutError("--emit_jobs and --collect go with --all.")
  catalog.import_modules(args.module)
  gin_config.parse_gin(args.gin_file, bindings)
  gin_config.check_train_bindings()
  # heldout sets train's start, seed and model_dir per cluster: a gin binding of the first two is
  # the flag's default (e.g. a gin file that fine-tunes from a T5 checkpoint), of the last an
  # error (the layout is heldout's).
  if gin_config.bound_value("train", "model_dir") is not None:
    raise HeldoutError("train.model_dir is bound by gin, but heldout trains each cluster in "
                       "<output_dir>/<cluster>/model: drop the binding and give --output_dir.")
  args.init_checkpoint = args.init_checkpoint or gin_config.bound_value("train", "init_checkpoint")
  if args.seed is None:
    args.seed = gin_config.bound_value("train", "seed", 0)
  # Only flags the user gave: gin bindings of `evaluate` apply to the rest.
  eval_kwargs = {k: v for k, v in (("split", args.split), ("batch_size", args.eval_batch_size),
                                   ("max_examples", args.max_eval_examples)) if v is not None}
  check_eval_settings(eval_settings(eval_kwargs), eval_kwargs)  # before any work
  if args.tfds_data_dir:
    import seqio
    seqio.set_tfds_data_dir_override(args.tfds_data_dir)
  evaluation._import_catalog()
  prefix = COLLECTIONS.get(args.collection, args.collection)
  check_collection(prefix)
  if args.init_checkpoint and args.model_size:
    raise HeldoutError(f"--model_size {args.model_size} sizes a random start, but "
                       f"--init_checkpoint {args.init_checkpoint} is the start (its own size): "
                       "give one of them.")
  clusters = [args.cluster] if args.cluster else available_clusters(prefix)
  if args.emit_jobs:
    print("\n".join(emit_jobs(argv, clusters)))
    return 0
  reports.check_writable_dir(args.output_dir, "--output_dir")
  if args.collect:
    out = collect_all(args.output_dir, clusters, prefix)
    print(open(os.path.join(args.output_dir, reports.COMPARISON_MD)).read())
    return 0 if not out["unfinished"] else 1
  train_kwargs = {}
  for key, value in (("num_steps", args.num_steps), ("batch_size", args.batch_size),
                     ("checkpoint_period", args.checkpoint_period)):
    if value is not None:
      train_kwargs[key] = value
  if args.input_length or args.target_length:
    if not (args.input_length and args.target_length):
      raise HeldoutError("Give both --input_length and --target_length (or neither).")
    train_kwargs["task_feature_lengths"] = {"inputs": args.input_length,
                                            "targets": args.target_length}
  if args.tfds_data_dir:
    train_kwargs["tfds_data_dir"] = args.tfds_data_dir
  for c in clusters:
    row = run_cluster(c, output_dir=args.output_dir, prefix=prefix,
                      init_checkpoint=args.init_checkpoint, model_size=args.model_size or "small",
                      train_kwargs=train_kwargs, eval_kwargs=eval_kwargs,
                      contamination_threshold=args.contamination_threshold,
                      contamination_max_train=args.contamination_max_train, seed=args.seed)
    if row is None:  # training was interrupted: stop here, as `flanjax train` does
      return 0
    print(f"{c}: before {reports.format_score(row.get('before'))} "
          f"after {reports.format_score(row.get('after'))} "
          f"gain {reports.format_score(row.get('gain'), signed=True)}"
          + (" (not comparable: evaluated with different settings, see comparison.md)"
             if row.get("comparable") is False else "")
          + f"; {os.path.join(args.output_dir, c, reports.COMPARISON_MD)}")
  if args.all:
    collect_all(args.output_dir, clusters, prefix)
    print(open(os.path.join(args.output_dir, reports.COMPARISON_MD)).read())
  return 0
