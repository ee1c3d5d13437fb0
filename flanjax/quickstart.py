"""`flanjax quickstart`: the whole FLAN loop on a laptop, offline, in about five minutes.

Trains a tiny T5 (CPU, fp32) on the built-in offline instruction collection with one cluster held
out, through the same code paths as a real run (local TFDS builder -> templates -> seqio tasks ->
capped mixture -> packed batches -> jitted train step -> Orbax checkpoints), then evaluates the
held-in tasks and the held-out cluster zero-shot and writes the reports:

  OUTPUT_DIR/model/        checkpoints, flanjax_model.json, metrics.jsonl, TensorBoard events
  OUTPUT_DIR/eval/         metrics.json, metrics.md, clusters.png, cluster_<c>.png, predictions.jsonl
  OUTPUT_DIR/quickstart.json / quickstart.md   the per-task table with chance levels

The command owns these paths: re-running it with the same --output_dir resumes training in
model/ (nothing to train when it is already at --steps) and replaces the reports in eval/ and
quickstart.{json,md}; other files there are kept.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence

from flanjax.errors import FlanjaxError

# Why these numbers: a 2+2-layer, d_model 128 T5 (1.0M params with the 896-piece offline
# vocabulary) learns the option tasks of the offline collection in a few hundred steps; batch 32
# of packed 128/32 rows keeps a step at ~0.2-0.4 s on 2 CPU cores, so 400 steps fit in ~3 minutes.
MODEL = dict(d_model=128, d_ff=256, num_heads=4, head_dim=32, num_encoder_layers=2,
             num_decoder_layers=2, dtype="float32", dropout_rate=0.0)
FEATURE_LENGTHS = {"inputs": 128, "targets": 32}
HELDOUT_CLUSTER = "nli"
DEFAULT_OUTPUT_DIR = "flanjax_quickstart"  # in the working directory


def build_parser() -> argparse.ArgumentParser:
  from flanjax.cli import FlagParser
  p = FlagParser(
      prog="flanjax quickstart",
      description="Train and evaluate a tiny T5 on the built-in offline instruction collection "
                  "(CPU, no download).")
  from flanjax.cli import positive_int
  p.add_argument("--output_dir", default=os.path.abspath(DEFAULT_OUTPUT_DIR),
                 help="where checkpoints, metrics and reports go (default: ./flanjax_quickstart); "
                      "a re-run resumes model/ and replaces the reports in eval/")
  p.add_argument("--steps", type=positive_int, default=400, help="training steps (default 400)")
  p.add_argument("--batch_size", type=positive_int, default=32)
  p.add_argument("--learning_rate", type=float, default=3e-3)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--heldout_cluster", default=HELDOUT_CLUSTER,
                 help="the cluster left out of training and evaluated zero-shot (default nli)")
  p.add_argument("--eval_examples", type=positive_int, default=100,
                 help="validation examples per task, >= 1 (default 100)")
  p.add_argument("--no_progress", action="store_true", help="no progress bar (logs instead)")
  return p


def run(output_dir: str, *, steps: int = 400, batch_size: int = 32, learning_rate: float = 3e-3,
        seed: int = 0, heldout_cluster: str = HELDOUT_CLUSTER, eval_examples: int = 100,
        progress: bool = True) -> dict | None:
  """Trains, evaluates and writes the quickstart reports; returns the summary dict, or None
  when training stopped before `steps` (preempted, or `stop_after_steps`)."""
  import flanjax.mixtures  # noqa: F401  (registers the offline mixtures)
  import flanjax.tasks  # noqa: F401
  from flanjax import checkpoints, evaluation, offline, optimizers, reports, train, vocab
  from flanjax.config import get_config
  from flanjax.mixtures import offline as offline_mixtures

  if steps < 1:
    raise FlanjaxError(f"--steps={steps}: train for at least 1 step.")
  if eval_examples < 1:
    raise FlanjaxError(f"--eval_examples={eval_examples}: evaluate at least 1 example per task.")
  clusters = offline_mixtures.CLUSTERS
  if heldout_cluster not in clusters:
    raise FlanjaxError(f"--heldout_cluster={heldout_cluster!r} is not a cluster of the offline "
                       f"collection; choose one of {clusters}.")
  output_dir = checkpoints.local_dir(output_dir, "--output_dir")
  model_dir = os.path.join(output_dir, "model")
  eval_dir = os.path.join(output_dir, "eval")
  reports.check_writable_dir(output_dir, "--output_dir")
  os.makedirs(output_dir, exist_ok=True)
  t0 = time.time()

  print(f"[flanjax quickstart] preparing the offline collection in {offline.data_dir()}", flush=True)
  offline.prepare()
  vocabulary = vocab.offline_vocabulary()
  config = get_config("tiny", vocab_size=vocabulary.vocab_size, **MODEL)
  train_mixture = f"offline_without_{heldout_cluster}"
  import seqio
  held_in = sorted(t.name for t in seqio.get_mixture_or_task(train_mixture).tasks)
  held_out = sorted(offline_mixtures.tasks_in(heldout_cluster))

  done = checkpoints.finalized_steps(model_dir)
  trained_earlier = bool(done) and done[-1] >= steps
  if not trained_earlier:
    print(f"[flanjax quickstart] training a tiny T5 on {train_mixture} for {steps} steps "
          f"(batch {batch_size}, packed {FEATURE_LENGTHS['inputs']}/"
          f"{FEATURE_LENGTHS['targets']})" + (f", resuming at step {done[-1]}" if done else ""),
          flush=True)
  t_train = time.time()
  try:  # on a trained model: checks that the settings are its own, then does nothing
    train_metrics = train.train(
        model_dir=model_dir, model_config=config, mixture=train_mixture,
        task_feature_lengths=FEATURE_LENGTHS, batch_size=batch_size, num_steps=steps,
        optimizer=optimizers.OptimizerConfig(learning_rate=learning_rate, warmup_steps=20),
        checkpoint_period=max(steps // 2, 1), keep_checkpoints=2, seed=seed,
        log_period=max(min(25, steps // 4), 1), progress=progress)
  except FlanjaxError as e:  # quickstart has no --model_dir: the model is <output_dir>/model
    raise FlanjaxError(train.model_dir_as(str(e), "--output_dir")) from None
  t_train = time.time() - t_train
  if trained_earlier:  # keep what the run that trained it reported
    print(f"[flanjax quickstart] evaluating the trained model in {model_dir} again",
          flush=True)
    earlier = _earlier_summary(output_dir, steps)
    t_train, train_metrics = earlier.get("train_seconds"), earlier.get("final_train_metrics")

  config, params, ckpt_vocab, mesh, step = evaluation.load_checkpoint(model_dir)
  if step < steps:  # preempted (SIGTERM) or stop_after_steps: not the model to report
    print(f"[flanjax quickstart] training stopped at step {step} of {steps}; nothing was "
          "evaluated. Rerun the same command to resume.", flush=True)
    return None
  print(f"[flanjax quickstart] evaluating step {step} on {len(held_in)} held-in and "
        f"{len(held_out)} held-out tasks ({eval_examples} validation examples each)", flush=True)
  results = evaluation.evaluate_tasks(
      config, params, ckpt_vocab or vocabulary, held_in + held_out, "validation", eval_dir,
      max_examples=eval_examples, batch_size=32, task_feature_lengths=FEATURE_LENGTHS,
      mesh=mesh, title=f"quickstart: tiny T5, {steps} steps, held out: {heldout_cluster}",
      run_info={"checkpoint": model_dir, "step": int(step), "train_mixture": train_mixture})

  losses = _losses(os.path.join(model_dir, "metrics.jsonl"))
  rows = []
  for task in held_in + held_out:
    r = results["tasks"][task]
    metric, score = r["primary"]
    rows.append({"task": task, "cluster": r["cluster"],
                 "split": "held-out" if task in held_out else "held-in",
                 "metric": metric, "score": round(float(score), 2),
                 "chance": _chance(task, metric)})
  summary = {
      "steps": steps, "seed": seed, "heldout_cluster": heldout_cluster,
      "first_loss": losses[0][1] if losses else None,
      "last_loss": losses[-1][1] if losses else None,
      "losses": losses, "train_seconds": None if t_train is None else round(t_train, 1),
      "trained_earlier": trained_earlier, "total_seconds": round(time.time() - t0, 1),
      "tasks": rows,
      "final_train_metrics": {k: float(v) for k, v in (train_metrics or {}).items()
                              if isinstance(v, (int, float))},
  }
  md = _markdown(summary)
  reports.atomic_write(os.path.join(output_dir, "quickstart.md"), md)
  reports.atomic_write(os.path.join(output_dir, "quickstart.json"),
                       json.dumps(summary, indent=2))
  print()
  print(md)
  print(f"Outputs: {output_dir} (model/: checkpoints + TensorBoard + metrics.jsonl; eval/: "
        "metrics.json, metrics.md, clusters.png, predictions.jsonl; quickstart.md)")
  return summary


def _earlier_summary(output_dir: str, steps: int) -> dict:
  """What an earlier quickstart of the same steps reported of its training: `train_seconds`
  and `final_train_metrics`, where known."""
  try:
    with open(os.path.join(output_dir, "quickstart.json")) as f:
      earlier = json.load(f)
  except (OSError, ValueError):
    return {}
  if not isinstance(earlier, dict) or earlier.get("steps") != steps:
    return {}
  out = {}
  if isinstance(earlier.get("train_seconds"), (int, float)):
    out["train_seconds"] = float(earlier["train_seconds"])
  if isinstance(earlier.get("final_train_metrics"), dict):
    out["final_train_metrics"] = earlier["final_train_metrics"]
  return out


def _losses(path: str) -> list[tuple[int, float]]:
  out = []
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        row = json.loads(line)
        if row.get("split", "train") == "train" and "loss" in row:
          out.append((int(row["step"]), float(row["loss"])))
  return out


def _chance(task: str, metric: str) -> float | None:
  """Accuracy of guessing uniformly among a task's options (None for free-text tasks)."""
  from flanjax import offline
  if "accuracy" not in metric:
    return None
  for family, options in offline.OPTIONS.items():
    if task.endswith(family) or f"_{family}" in task:
      return round(100.0 / len(options), 2)
  return None


def _markdown(s: dict) -> str:
  lines = [f"## flanjax quickstart ({s['steps']} steps, seed {s['seed']}, held-out cluster: "
           f"{s['heldout_cluster']})", ""]
  if s["first_loss"] is not None:
    if s["train_seconds"] is None:
      took = "trained by an earlier run"
    elif s.get("trained_earlier"):
      took = f"trained by an earlier run in {s['train_seconds']} s"
    else:
      took = f"training took {s['train_seconds']} s"
    lines += [f"Training loss: {s['first_loss']:.3f} (first logged step) -> "
              f"{s['last_loss']:.3f} (last); {took}, everything {s['total_seconds']} s.", ""]
  lines += ["| task | cluster | split | metric | score | chance |",
            "|---|---|---|---|---:|---:|"]
  for r in s["tasks"]:
    chance = "" if r["chance"] is None else f"{r['chance']:.1f}"
    lines.append(f"| {r['task']} | {r['cluster']} | {r['split']} | {r['metric']} | "
                 f"{r['score']:.1f} | {chance} |")
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  run(args.output_dir, steps=args.steps, batch_size=args.batch_size,
      learning_rate=args.learning_rate, seed=args.seed, heldout_cluster=args.heldout_cluster,
      eval_examples=args.eval_examples, progress=not args.no_progress)
  return 0
