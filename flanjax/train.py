"""The trainer: `flanjax train` / `python -m flanjax.train`, and the gin-configurable `train(...)`.

Read `train()` top to bottom: mesh -> model config -> optimizer -> sharded state (eval_shape ->
shardings -> jit(init)) -> resume or initialise from a checkpoint -> data (resumes at the
checkpoint's data position) -> the jitted step loop with metrics, checkpoints, evaluation,
SIGTERM handling and NaN checks.

Exact resume: the data iterator continues from its state saved with the checkpoint (or, without
one, restarts and skips the number of batches consumed, stored in the checkpoint's `meta`),
the dropout RNG is `fold_in(PRNGKey(seed), step)`, and the state
(params + optimizer state + step) is restored bit-exactly, so an interrupted run reproduces the
uninterrupted run's per-step losses exactly (on CPU).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from flanjax import checkpoints as ckpt_lib
from flanjax import files, losses, optimizers, partitioning, summaries
from flanjax import flops as flops_lib
from flanjax.config import T5Config, check_field_types, is_int, unquote_hint
from flanjax.errors import FlanjaxError, summary
from flanjax.optimizers import OptimizerConfig, decay_length, make_optimizer

log = logging.getLogger("flanjax.train")

MODEL_INPUTS = ("encoder_input_tokens", "decoder_input_tokens", "encoder_segment_ids",
                "decoder_segment_ids", "encoder_positions", "decoder_positions")


# Tests only: seconds to sleep after each step, so that a test can kill a run mid-way.
_TEST_STEP_DELAY_S = float(os.environ.get("FLANJAX_TEST_STEP_DELAY_S", "0") or 0)


class TrainingError(FlanjaxError):
  """Training stopped (e.g. a NaN/Inf loss)."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of updates applied
  params: Any
  opt_state: Any


# --------------------------------------------------------------------------- shardings


# NamedShardings of the params (shared with eval and infer).
param_shardings = partitioning.param_shardings


def opt_state_shardings(abstract_opt_state, params_shapes, params_shardings, mesh):
  """Shardings of the optimizer state: param-shaped leaves follow their parameter; factored
  Adafactor statistics (a param's shape with one dim removed) keep the remaining dims' axes;
  everything else is replicated."""
  by_path = {}
  for path, (shape, sh) in zip(
      [ckpt_lib.path_keys(p) for p, _ in jax.tree_util.tree_flatten_with_path(params_shapes)[0]],
      zip(jax.tree.leaves(params_shapes), jax.tree.leaves(params_shardings))):
    by_path[path] = (shape.shape, sh.spec)
  # The optimizer's batched layer stacks (optimizers.per_layer) hold unscanned layers stacked:
  # `stack/layers/...` with a leading, unsharded layer axis.
  stacked = {}
  for path, (shape, spec) in by_path.items():
    for j, key in enumerate(path):
      if optimizers.LAYER_KEY.match(str(key)):
        stacked.setdefault(path[:j] + ("layers",) + path[j + 1:], []).append((shape, spec))
  for path, entries in stacked.items():
    if path not in by_path:
      shape, spec = entries[0]
      by_path[path] = ((len(entries),) + tuple(shape), (None,) + tuple(spec))
  replicated = NamedSharding(mesh, P())

  def one(path, leaf):
    keys = ckpt_lib.path_keys(path)
    for start in range(len(keys)):
      hit = by_path.get(keys[start:])
      if hit is None:
        continue
      pshape, spec = hit
      spec = tuple(spec) + (None,) * (len(pshape) - len(spec))
      if tuple(leaf.shape) == tuple(pshape):
        return NamedSharding(mesh, P(*spec))
      if len(leaf.shape) == len(pshape) - 1:
        for i in range(len(pshape)):
          if tuple(pshape[:i] + pshape[i + 1:]) == tuple(leaf.shape):
            return NamedSharding(mesh, P(*(spec[:i] + spec[i + 1:])))
      return replicated
    return replicated
  return jax.tree_util.tree_map_with_path(one, abstract_opt_state)


# --------------------------------------------------------------------------- the step


def _split_microbatches(batch, num_microbatches):
  """[B, ...] -> [M, B/M, ...]; microbatch i takes rows i, i+M, ... (spread over data shards)."""
  def split(x):
    x = x.reshape((x.shape[0] // num_microbatches, num_microbatches) + x.shape[1:])
    x = jnp.swapaxes(x, 0, 1)
    return jax.lax.with_sharding_constraint(x, P(None, partitioning.DATA))
  return jax.tree.map(split, batch)


def _param_norm(params):
  """The global L2 norm of the updated params (the step's `param_norm` metric).

  The optimization barrier keeps the norm's reduction out of the fusion that writes the updated
  params: fused into it, XLA could not update the donated param buffers in place, and wrote the
  new params to fresh buffers, then copied them back (one more read and write of every param per
  step; bench/NOTES.md row 72).
  """
  return optax.tree.norm(jax.lax.optimization_barrier(params))


def _grad_norm(grads):
  """The global L2 norm of the (normalised) gradients, summed in float32: the step's `grad_norm`
  metric."""
  return jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in jax.tree.leaves(grads)))


def unscanned_layer_kernel(path) -> bool:
  """Whether a param path (a jax key path) is a `kernel` inside an unscanned layer (`layers_N`):
  used once per step, through its cast to the compute dtype."""
  keys = ckpt_lib.path_keys(path)
  return bool(keys) and keys[-1] == "kernel" and any(
      optimizers.LAYER_KEY.match(str(k)) for k in keys)


def _norm_view(grads, compute_dtype):
  """The gradients as the `grad_norm` metric's `lax.cond` takes them: the unscanned layers'
  kernels in the compute dtype, the rest as they are.

  Each of those kernels is used once, through its cast to the compute dtype, so its gradient is
  one compute-dtype GEMM's output (x^T dy) cast to float32: the cast back gives the same values,
  and XLA drops the two casts. A conditional's operands are materialised buffers: given the
  float32 gradients, XLA wrote a float32 copy of every kernel gradient on every step, whether
  the branch ran or not, and the optimizer read those copies instead of the GEMMs' bf16 outputs
  (bench/NOTES.md row 135). Scanned stacks keep float32 (their gradients are accumulated in a
  float32 stack, which exists anyway).
  """
  def view(path, g):
    return g.astype(compute_dtype) if unscanned_layer_kernel(path) else g
  return jax.tree_util.tree_map_with_path(view, grads)


@jax.jit
def _params_finite(params):
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))


def _last_good_checkpoint(manager, model_dir) -> str:
  """'The last good checkpoint is step N in DIR.' (or 'none'), for errors that stop training."""
  good = manager.latest_step()
  return (f"The last good checkpoint is {'step ' + str(good) if good is not None else 'none'} "
          f"in {model_dir}.")


def _check_params_finite(params, step, manager, model_dir):
  """Refuses to checkpoint NaN/Inf params (a step whose gradients overflowed while its loss,
  computed before the update, was still finite)."""
  if not bool(_params_finite(params)):
    raise TrainingError(f"NaN/Inf params after step {step}; not saving them. "
                        + _last_good_checkpoint(manager, model_dir))


def _dropout_key(seed: int, step):
  """The step's dropout key: `fold_in(PRNGKey(seed), step)` (threefry; exact resume)."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), step)


def make_train_step(config: T5Config, tx: optax.GradientTransformation, schedule, *, mesh, rules,
                    state_shardings, batch_keys: Sequence[str], num_microbatches: int = 1,
                    z_loss: float = 1e-4, label_smoothing: float = 0.0,
                    loss_normalizer="num_real_target_tokens", seed: int = 0,
                    loss_stats_impl: str = "auto"):
  """One `jax.jit` train step `(state, batch, with_norms) -> (state, metrics)` with explicit
  in/out shardings and the state donated. Call it under `jax.set_mesh(mesh)`.

  The differentiated loss is each (micro)batch's summed loss divided by the normaliser of the
  full batch (T5X's loss normalising factor), so the gradients come out normalised with no
  division pass over them (bench/NOTES.md row 133: the same speed, 0.2 GB less memory at large),
  and `num_microbatches > 1` gives the same update as one full batch. `with_norms` (a bool scalar)
  says whether this step computes the `grad_norm` and `param_norm` metrics (NaN when not): two
  more reads of every parameter and gradient, ~1.7 % of a T5-xl step on an H100 (bench/NOTES.md
  row 130), so `train` asks for them only on the steps it logs or saves.
  """
  from flanjax.model import T5
  model = T5(config)
  dropout = config.dropout_rate > 0
  compute_dtype = jnp.dtype(config.dtype)

  def loss_fn(params, mb, rng, denom):
    inputs = {k: mb[k] for k in MODEL_INPUTS if k in mb}
    logits = model.apply({"params": params}, **inputs, enable_dropout=dropout,
                         rngs={"dropout": rng} if dropout else None)  # [b, target_len, vocab]
    sums = losses.weighted_sums(logits, mb["decoder_target_tokens"], mb["decoder_loss_weights"],
                                z_loss=z_loss, label_smoothing=label_smoothing,
                                stats_impl=loss_stats_impl)
    return sums["loss"] / denom, sums

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def step_fn(state: TrainState, batch, with_norms):
    with nn.logical_axis_rules(rules):
      rng = _dropout_key(seed, state.step)
      weights = batch["decoder_loss_weights"]
      denom = losses.loss_denominator(weights, loss_normalizer)
      if num_microbatches == 1:
        (_, sums), grads = grad_fn(state.params, batch, rng, denom)
      else:
        mbs = _split_microbatches(batch, num_microbatches)
        zeros = jax.tree.map(jnp.zeros_like, state.params)
        zero_sums = {k: jnp.zeros((), jnp.float32) for k in ("loss", "z_loss", "correct",
                                                             "weight")}

        def body(carry, xs):
          g_acc, s_acc = carry
          mb, i = xs
          (_, s), g = grad_fn(state.params, mb, jax.random.fold_in(rng, i), denom)
          return (jax.tree.map(jnp.add, g_acc, g), jax.tree.map(jnp.add, s_acc, s)), None

        (grads, sums), _ = jax.lax.scan(body, (zeros, zero_sums),
                                        (mbs, jnp.arange(num_microbatches)))
      updates, opt_state = tx.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      new_state = TrainState(step=state.step + 1, params=params, opt_state=opt_state)
      enc = batch["encoder_input_tokens"]
      metrics = {
          "loss": sums["loss"] / denom,
          "z_loss": sums["z_loss"] / denom,
          "cross_entropy": (sums["loss"] - sums["z_loss"]) / denom,
          "accuracy": sums["correct"] / jnp.maximum(sums["weight"], 1.0),
          "learning_rate": schedule(state.step),
          "num_target_tokens": sums["weight"],
          "nonpad_fraction_inputs": jnp.mean((enc != 0).astype(jnp.float32)),
          "nonpad_fraction_targets": jnp.mean((weights > 0).astype(jnp.float32)),
      }
      nan = jnp.full((), jnp.nan, jnp.float32)
      # One microbatch: the kernels' gradients as their GEMMs wrote them (see `_norm_view`);
      # several: float32 sums, which exist anyway.
      normed = _norm_view(grads, compute_dtype) if num_microbatches == 1 else grads
      metrics["grad_norm"], metrics["param_norm"] = jax.lax.cond(
          with_norms,
          lambda: (_grad_norm(normed).astype(jnp.float32),
                   _param_norm(params).astype(jnp.float32)),
          lambda: (nan, nan))
      return new_state, metrics

  batch_shardings = {k: partitioning.batch_sharding(mesh) for k in batch_keys}
  replicated = NamedSharding(mesh, P())
  return jax.jit(step_fn, in_shardings=(state_shardings, batch_shardings, replicated),
                 out_shardings=(state_shardings, replicated), donate_argnums=(0,))


# --------------------------------------------------------------------------- data


class _DataStream:
  """The trainer's global, sharded batches; each process reads only its own rows.

  With a mixture, the tf.data iterator's exact position (shuffle buffers, file offsets, mixture
  sampler) is saved next to every checkpoint and restored on resume in O(1). Without a saved
  state (an older checkpoint, a damaged one, another process count) the stream is rebuilt and
  its first `start_batch` batches are skipped, in O(k) (the skipped examples are still read):
  exact with the process count that saved it; with another, each process's shard of the data
  differs, so the batches after the resume point are other rows of the same mixture. A pipeline
  tf.data cannot serialise (a Python function in it) is saved without its state: a resume skips.
  Synthetic batches are generated from their index, so they always start in O(1).
  """

  def __init__(self, *, mixture, synthetic_data, config, task_feature_lengths, batch_size, seed,
               mesh, start_batch, pack, manager, resume_step):
    self._mesh, self._batch_size, self._manager = mesh, batch_size, manager
    self._saveable = not synthetic_data  # a pipeline.TrainIterator
    # The pipeline and synthetic.batches take the global batch size and yield this shard's rows.
    shard_index, num_shards, _ = partitioning.process_batch_slice(mesh, batch_size)
    if synthetic_data:
      from flanjax import synthetic
      self._it = synthetic.batches(config, batch_size, task_feature_lengths["inputs"],
                                   task_feature_lengths["targets"], seed,
                                   shard_index=shard_index, num_shards=num_shards,
                                   start_batch=start_batch, pack=pack)
      return
    from flanjax import pipeline  # TensorFlow boundary: only when training on a mixture
    kwargs = dict(task_feature_lengths=dict(task_feature_lengths), batch_size=batch_size,
                  seed=seed, pack=pack, shard_index=shard_index, num_shards=num_shards)
    saved = manager.read_data_state(resume_step) if resume_step is not None else None
    skip = (f"re-reading and skipping the first {start_batch} batches to resume the data stream "
            "(this can take a while; the same batches if the process count is the one that "
            "saved it).")
    if saved is not None and saved.get("batches_consumed") == start_batch:
      # Rebuilt exactly as when it was saved (a skip is part of the tf.data graph), then moved.
      self._built_with = int(saved["built_with_start_batch"])
      self._it = pipeline.train_iterator(mixture, start_batch=self._built_with, **kwargs)
      try:
        self._it.restore(saved["prefix"])
        log.info("data stream restored at batch %d from its saved state", start_batch)
        return
      except Exception as e:  # noqa: BLE001 (a damaged or foreign state: skipping is exact too)
        _message(f"warning: the saved data state of step {resume_step} could not be restored "
                 f"({summary(e)}): {skip}")
    elif start_batch:
      _message(f"no saved data state for step {resume_step} of this process: {skip}")
    self._built_with = start_batch
    self._it = pipeline.train_iterator(mixture, start_batch=start_batch, **kwargs)

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    return partitioning.global_batch(next(self._it), self._mesh, self._batch_size)

  def save(self, step: int, batches_consumed: int) -> None:
    """Saves the stream's position at `step` (a no-op for synthetic data, and for a pipeline
    tf.data cannot serialise: then a resume re-reads and skips the batches trained on)."""
    if not self._saveable:
      return
    try:
      self._manager.write_data_state(
          step, self._save_iterator,
          {"batches_consumed": batches_consumed, "built_with_start_batch": self._built_with})
    except ckpt_lib.UnsaveableDataState as e:  # raised on every process alike
      self._saveable = False
      _message(f"warning: the data stream cannot be saved ({e}); checkpoints are saved without "
               "it, and a resume re-reads and skips the batches already trained on (exact, "
               "slower).")

  def _save_iterator(self, prefix: str) -> None:
    try:
      self._it.save(prefix)
    except Exception as e:  # noqa: BLE001 (tf.errors.FailedPreconditionError, without TF here)
      if "is stateful" in str(e):  # a tf.py_function / generator source, e.g. TFDS's mock_data
        raise ckpt_lib.UnsaveableDataState(summary(e)) from e
      raise


def _set_tfds_data_dir(path: str | None, synthetic_data: bool):
  """Points seqio/tfds at `path` (works after tfds was imported, unlike TFDS_DATA_DIR)."""
  if not path:
    return
  try:
    import seqio  # TensorFlow boundary: only when a data dir is given
  except ImportError:
    if synthetic_data:  # a TF-free machine training on synthetic data: nothing reads TFDS
      return
    raise FlanjaxError("--tfds_data_dir needs seqio and tensorflow-datasets installed "
                       "(pip install seqio tensorflow-datasets).") from None
  seqio.set_tfds_data_dir_override(path)


def _mixture_vocabulary(mixture, config: T5Config):
  """The vocabulary description of a mixture's `targets` feature (data side, lazy); checks
  that the model's vocab_size covers it."""
  from flanjax import pipeline
  try:
    provider = pipeline.get_provider(mixture)
  except KeyError as e:
    raise FlanjaxError(str(e).strip("'\"")) from None
  vocab = provider.output_features["targets"].vocabulary
  from flanjax import vocab as vocab_lib
  vocab_lib.check_vocabulary(vocab, mixture)  # a missing model file: one error, not tf's
  if vocab.vocab_size > config.vocab_size:
    raise FlanjaxError(f"mixture {mixture!r} uses a vocabulary of {vocab.vocab_size} ids but the "
                       f"model has vocab_size={config.vocab_size}; set T5Config.vocab_size >= "
                       f"{vocab.vocab_size}.")
  try:
    return ckpt_lib.vocabulary_info(vocab)
  except FlanjaxError as e:  # informational only: never block training on it
    log.warning("could not record the vocabulary of %s: %s", mixture, e)
    return None


# --------------------------------------------------------------------------- signals


class _Preemption:
  """Records SIGTERM and a first Ctrl-C (SIGINT): the loop finishes its step, saves, and then
  exits normally (SIGTERM: a preemption) or raises KeyboardInterrupt (Ctrl-C, unless that was
  the last step). A second SIGTERM kills the process; a second Ctrl-C raises KeyboardInterrupt
  there and then (a save already under way is still waited for)."""

  def __init__(self):
    self.requested = False
    self.interrupted = False  # by Ctrl-C
    self.terminated = False  # by SIGTERM
    self._old = {}

  def __enter__(self):
    if _is_main_thread():  # signal handlers can only be installed from the main thread
      for sig in (signal.SIGTERM, signal.SIGINT):
        # Not over an ignored signal (nohup's SIGINT) or a handler installed outside Python.
        if signal.getsignal(sig) not in (signal.SIG_IGN, None):
          self._old[sig] = signal.signal(sig, self._handler)
    return self

  def _handler(self, signum, frame):
    del frame
    if signum == signal.SIGINT:
      if self.interrupted:  # a second Ctrl-C: stop now, without the checkpoint
        raise KeyboardInterrupt
      self.interrupted = self.requested = True
      # os.write: a print could re-enter a stderr write (a progress bar's) it interrupted.
      os.write(2, b"\nCtrl-C: saving a checkpoint after this step, then stopping (Ctrl-C again "
                  b"to stop without it).\n")
      return
    if self.terminated:  # a second SIGTERM: stop now
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
    self.terminated = self.requested = True

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)

  def check(self) -> bool:
    if jax.process_count() == 1:
      return self.requested
    from jax.experimental import multihost_utils
    flags = multihost_utils.process_allgather(np.asarray([self.requested], np.int32))
    return bool(np.any(flags))


def _is_main_thread():
  import threading
  return threading.current_thread() is threading.main_thread()


# --------------------------------------------------------------------------- train


def train(
    *,
    model_dir: str | None = None,
    model_config: T5Config | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    mixture: str | None = None,
    synthetic_data: bool = False,
    task_feature_lengths: Mapping[str, int] = (("inputs", 512), ("targets", 128)),
    batch_size: int = 128,
    num_steps: int = 1000,
    optimizer: OptimizerConfig = OptimizerConfig(),
    mesh_shape: Sequence[int] = (-1, 1),
    parameter_partitioning_dims: int = 1,
    activation_partitioning_dims: int = 1,
    checkpoint_period: int = 1000,
    keep_checkpoints: int = 3,
    keep_best: int = 0,
    best_metric: str | None = None,
    best_mode: str = "max",
    async_checkpointing: bool = True,
    eval_period: int = 0,
    eval_mixture: str | None = None,
    eval_split: str = "validation",
    eval_max_examples: int | None = 200,
    eval_fn: Callable[[int, Any], dict] | None = None,
    init_checkpoint: str | None = None,
    seed: int = 0,
    num_microbatches: int = 1,
    z_loss: float = 1e-4,
    label_smoothing: float = 0.0,
    loss_normalizer: str | float = "num_real_target_tokens",
    loss_stats_impl: str = "auto",
    trainable: str | Sequence[str] | None = None,
    pack: bool = True,
    log_period: int = 10,
    norm_metrics_every_step: bool = False,
    peak_flops: float | None = None,
    tfds_data_dir: str | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> dict[str, float]:
  """Trains (or fine-tunes) a T5 and returns the last logged training metrics.

  model_config: the T5Config (bind `train.model_config = @T5Config()` in gin); defaults to the
    init_checkpoint's / model_dir's saved config. model_overrides: T5Config fields to change
    on it (dropout_rate, dtype, scan_layers, remat_policy, ...).
  mixture / synthetic_data: a registered seqio mixture or task, or TF-free synthetic batches.
  task_feature_lengths: {"inputs": Te, "targets": Td}. batch_size: global (all hosts).
  mesh_shape: (data, model); -1 fills the remaining devices. parameter_partitioning_dims=2
    also shards params over `data` (FSDP-like).
  checkpoint_period / keep_checkpoints: save every N steps (async), keep the last K; keep_best
    extra checkpoints by `best_metric` of the periodic evaluation (`best_mode` max|min).
  eval_period / eval_mixture: periodic evaluation (`eval_fn(step, params) -> metrics`
    overrides the default seqio evaluation).
  init_checkpoint: a flanjax checkpoint dir (e.g. converted from HF) to start from. Each
    checkpoint records where its run started; a resume that names another init_checkpoint is
    refused (it would continue from model_dir and never read it).
  trainable: regex(es) over parameter paths to train; the rest stay frozen.
  loss_stats_impl: where the loss's statistics over the logits come from (`losses.STATS_IMPLS`:
    "auto" = one Pallas kernel read on GPUs, XLA's reductions elsewhere; "xla"; "pallas").
  log_period: fetch and print metrics every N steps (each step's row is still written).
  norm_metrics_every_step: compute `grad_norm` / `param_norm` on every step, not only on the
    steps that are logged, evaluated or saved (those two reductions cost ~1.7 % of a T5-xl step).
  progress: a tqdm bar on stderr when it is a terminal; otherwise, or with False, one line per
    logged step (loss, tokens/s, MFU, ms/step, ETA).
  stop_after_steps: stop (with a checkpoint) after this many steps of this invocation (tests).
  """
  arguments = dict(locals())  # exactly the parameters (checked below)
  t_start = time.time()
  if not model_dir:
    raise FlanjaxError("train: --model_dir is required (checkpoints, metrics and the resume "
                       "point live there).")
  model_dir = ckpt_lib.local_dir(model_dir, "model_dir")
  task_feature_lengths = _check_train_args(arguments)
  if not synthetic_data and not mixture:
    raise FlanjaxError("train: set `mixture` (a registered seqio mixture or task) or "
                       "`synthetic_data=True`.")
  _set_tfds_data_dir(tfds_data_dir, synthetic_data)

  # 1. Mesh and partitioning rules.
  mesh = partitioning.make_mesh(mesh_shape)
  rules = partitioning.standard_logical_axis_rules(parameter_partitioning_dims,
                                                   activation_partitioning_dims)
  partitioning.check_batch_size(batch_size, mesh, num_microbatches)

  # Before anything is written (the flags are checked first, so a bad one creates no folder):
  # a writable folder, without entries that Orbax would delete.
  ckpt_lib.check_no_foreign_entries(model_dir)
  ckpt_lib.check_writable_dir(model_dir, "model_dir")

  # A converted/pretrained checkpoint (params only) is never a resume point, and Orbax's
  # LatestN would delete it: refuse to train into it.
  all_steps = ckpt_lib.finalized_steps(model_dir)
  train_steps = ckpt_lib.finalized_steps(model_dir, ckpt_lib.TrainCheckpointManager.ITEMS)
  incomplete = ckpt_lib.incomplete_steps(model_dir)
  pretrained = sorted(set(all_steps) - set(train_steps) - set(incomplete))
  if pretrained:
    raise FlanjaxError(
        f"model_dir {model_dir} holds a pretrained/converted checkpoint (no optimizer state at "
        f"step(s) {pretrained}); pass it as "
        f"--gin.train.init_checkpoint=\"'{model_dir}'\" and use a new --model_dir.")

  # 2. Model config: explicit, else the model_dir's (resume), else the init checkpoint's.
  saved_info = None
  if os.path.exists(os.path.join(model_dir, ckpt_lib.MODEL_INFO_FILE)):
    saved_info = ckpt_lib.read_model_info(model_dir)
  resuming = saved_info is not None and bool(train_steps)
  # A resume never reads init_checkpoint (which may be gone by now): only its name is checked.
  init_info = (ckpt_lib.read_model_info(init_checkpoint) if init_checkpoint and not resuming
               else None)
  if model_config is None:
    src = saved_info or init_info
    if src is None:
      raise FlanjaxError("train: no model config; bind `train.model_config = @T5Config()` "
                         "(e.g. --gin_file=models/t5_1_1_small.gin) or set init_checkpoint.")
    model_config = T5Config.from_dict(src["model_config"])
  if model_overrides:
    # e.g. {"dropout_rate": 0.05, "dtype": "bfloat16", "scan_layers": True} on a loaded config.
    try:
      model_config = T5Config.from_dict({**model_config.to_dict(), **dict(model_overrides)})
    except (ValueError, TypeError) as e:
      raise FlanjaxError(f"train: model_overrides={dict(model_overrides)!r}: "
                         f"{str(e).splitlines()[0]}") from None
  if resuming:  # before anything is restored or written
    _check_same_model(T5Config.from_dict(saved_info["model_config"]), model_config, model_dir)
  vocabulary = (ckpt_lib.resolve_vocabulary(init_info.get("vocabulary"), init_checkpoint,
                                            missing_ok=True) if init_info else None)
  if mixture and not synthetic_data:
    mixture_vocab = _mixture_vocabulary(mixture, model_config)
    vocabulary = merge_init_vocabulary(vocabulary, mixture_vocab, init_checkpoint, mixture)
  if resuming:
    saved_vocab = ckpt_lib.resolve_vocabulary(saved_info.get("vocabulary"), model_dir,
                                              missing_ok=True)
    if saved_vocab and vocabulary and not ckpt_lib.same_vocabulary(saved_vocab, vocabulary):
      raise FlanjaxError(
          f"model_dir {model_dir} holds checkpoints trained with the vocabulary {saved_vocab} "
          f"({ckpt_lib.MODEL_INFO_FILE}) but this run's is {vocabulary}; resume with the data "
          "that wrote them (tasks of that vocabulary), or use a new --model_dir.")
    # The recorded one, unless this run's is the same model at a path that is readable now.
    if not (saved_vocab and vocabulary and ckpt_lib.readable_file(vocabulary.get("path"))):
      vocabulary = saved_vocab or vocabulary
  # Every process, before any work: the copy flanjax_model.json will point at is not blocked.
  ckpt_lib.check_vocabulary_copy(vocabulary, model_dir)
  if eval_fn is None and eval_period and eval_mixture and vocabulary:
    from flanjax import evaluation  # the periodic evaluation's tasks: now, not at its first run
    try:
      evaluation.check_task_vocabularies(evaluation.resolve_tasks(eval_mixture, eval_split),
                                         vocabulary)
    except FlanjaxError as e:
      raise FlanjaxError(f"train.eval_mixture={eval_mixture!r}: {e}") from None

  # 3. Optimizer and the sharded state (eval_shape -> shardings -> jit(init)).
  from flanjax import model as model_lib
  shapes = model_lib.param_shapes(model_config)
  tx, schedule = make_optimizer(optimizer, params=shapes, trainable=trainable,
                                num_steps=num_steps)
  decay = decay_length(optimizer, num_steps)  # recorded in each checkpoint's meta
  p_shard = param_shardings(model_config, mesh, rules, shapes)
  abstract_opt = jax.eval_shape(tx.init, shapes)
  o_shard = opt_state_shardings(abstract_opt, shapes, p_shard, mesh)
  state_shardings = TrainState(step=NamedSharding(mesh, P()), params=p_shard, opt_state=o_shard)
  abstract_state = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=shapes,
                              opt_state=abstract_opt)

  def init_state(rng):
    params = _init_unjitted(model_config, rng)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))

  def state_from_params(params):
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))

  # 4. Resume from model_dir, else initialise (from init_checkpoint or at random).
  # The data stream's settings: stored in each checkpoint's meta and checked on resume.
  data_settings = {"mixture": "synthetic" if synthetic_data else mixture,
                   "task_feature_lengths": dict(task_feature_lengths), "pack": bool(pack),
                   "batch_size": batch_size, "seed": seed}
  # Incomplete steps after the resume point would be retrained but block their new checkpoints.
  resume_from = train_steps[-1] if train_steps else None
  started_from = {INIT_KEY: init_identity(init_checkpoint)}  # in each checkpoint's meta
  for step, missing, moved_to in ckpt_lib.set_aside_incomplete_steps(model_dir):
    _message(f"warning: checkpoint step {step} in {model_dir} is incomplete (no "
             f"{', '.join(m + '/' for m in missing)}) and is skipped: "
             + (f"resuming from step {resume_from}" if resume_from is not None
                else "no complete checkpoint, starting from the beginning")
             + f"; the incomplete step was moved to {moved_to}.")
  made = files.missing_folders(model_dir)  # a run that fails before writing leaves none of them
  manager = ckpt_lib.TrainCheckpointManager(
      model_dir, save_period=checkpoint_period, keep=keep_checkpoints, keep_best=keep_best,
      best_metric=best_metric, best_mode=best_mode, async_save=async_checkpointing)
  writer = None
  failed = True
  try:
    latest = manager.latest_step()
    with jax.set_mesh(mesh):
      if latest is not None:
        # Every check before the (long) restore; flanjax_model.json is written once data is read.
        saved_meta = manager.read_meta(latest)
        _check_resume_settings(saved_meta, model_dir, latest, data_settings)
        check_resume_init(saved_meta, model_dir, latest, init_checkpoint)
        _check_same_optimizer_state(saved_meta.get(OPT_KEY), optimizer, abstract_opt, model_dir,
                                    latest, params=shapes, trainable=trainable,
                                    num_steps=num_steps)
        changed = optimizer_changes(saved_meta.get(OPT_KEY), optimizer)
        if optimizer.decay_steps is None and saved_meta.get(DECAY_KEY, decay) != decay:
          _message(f"note: resuming {model_dir} at step {latest} with num_steps={num_steps}: "
                   f"the {optimizer.schedule} learning-rate schedule now decays over {decay} "
                   f"steps (checkpoint: {saved_meta[DECAY_KEY]}), so the rate changes at step "
                   f"{latest}; set OptimizerConfig.decay_steps={saved_meta[DECAY_KEY]} to keep "
                   "the checkpoints' schedule.")
        if changed:  # allowed (e.g. a new schedule for more steps), but not silently
          _message(f"note: resuming {model_dir} at step {latest} with other optimizer settings "
                   f"than its checkpoints': {changed}; the optimizer state carries on.")
        # Carried on (checkpoints of older flanjax record none: nor do their successors).
        started_from = {k: saved_meta[k] for k in (INIT_KEY,) if k in saved_meta}
        state, meta = manager.restore(latest, abstract_state, state_shardings)
        start_batch = int(meta["batches_consumed"])
        log.info("resumed from %s step %d", model_dir, latest)
      elif init_checkpoint:
        params = _load_init_params(init_checkpoint, model_config, p_shard)
        state = jax.jit(state_from_params, in_shardings=(p_shard,),
                        out_shardings=state_shardings)(params)
        start_batch = 0
      else:
        state = jax.jit(init_state, out_shardings=state_shardings)(jax.random.PRNGKey(seed))
        start_batch = 0
    first_step = int(jax.device_get(state.step))
    if first_step >= num_steps:
      _message(f"model_dir {model_dir} is already at step {first_step} >= num_steps="
               f"{num_steps}; nothing to do.")
      if jax.process_index() == 0:  # rows of steps after it (e.g. of a set-aside step) are stale
        summaries._drop_rows_after(os.path.join(model_dir, "metrics.jsonl"), first_step)
      return {}

    # 5. Data, positioned at the checkpoint's data position.
    batches = _DataStream(mixture=mixture, synthetic_data=synthetic_data, config=model_config,
                          task_feature_lengths=task_feature_lengths, batch_size=batch_size,
                          seed=seed, mesh=mesh, start_batch=start_batch, pack=pack,
                          manager=manager, resume_step=latest)

    # 6. The loop.
    writer = summaries.MetricsWriter(model_dir, total_steps=num_steps, initial_step=first_step,
                                     progress=progress)
    flops_per_step = batch_size * flops_lib.t5_train_flops_per_sequence(
        model_config, task_feature_lengths["inputs"], task_feature_lengths["targets"])
    peak = flops_lib.peak_flops_per_device(jax.devices()[0].device_kind, peak_flops)
    if eval_fn is None and eval_period and eval_mixture:
      eval_fn = _default_eval_fn(model_config, vocabulary, eval_mixture, eval_split,
                                 eval_max_examples, task_feature_lengths, model_dir, mesh)
    tokens_per_step = batch_size * (task_feature_lengths["inputs"]
                                    + task_feature_lengths["targets"])
    last_metrics: dict[str, float] = {}
    pending: list[tuple[int, dict, bool]] = []  # (step, metrics on device, with_norms)
    window_start, window_steps = time.time(), 0
    batches_consumed = start_batch
    step = first_step
    train_step = None

    def meta_now(step):
      return {"step": step, "batches_consumed": batches_consumed,
              "num_microbatches": num_microbatches, **data_settings, **started_from,
              OPT_KEY: dataclasses.asdict(optimizer),
              DECAY_KEY: decay}

    def flush(step):
      """Fetches pending metrics, stops on NaN/Inf, logs the last ones."""
      nonlocal pending, window_start, window_steps, last_metrics
      if not pending:
        return
      fetched = jax.device_get([m for _, m, _ in pending])
      for (s, _, with_norms), m in zip(pending, fetched):
        if not with_norms:  # not computed on this step (NaN): not a metric
          del m["grad_norm"], m["param_norm"]
        if not (np.isfinite(m["loss"]) and np.isfinite(m.get("grad_norm", 0.0))):
          raise TrainingError(
              f"NaN/Inf loss at step {s} (loss={m['loss']}, "
              f"grad_norm={m.get('grad_norm', 'not computed')}); stopping. "
              + _last_good_checkpoint(manager, model_dir))
      dt = time.time() - window_start
      per_step = dt / max(window_steps, 1)
      for s, m in zip([s for s, _, _ in pending], fetched):
        row = {k: float(v) for k, v in m.items()}
        row["steps_per_sec"] = 1.0 / per_step if per_step else 0.0
        row["seqs_per_sec"] = batch_size / per_step if per_step else 0.0
        row["tokens_per_sec"] = tokens_per_step / per_step if per_step else 0.0
        row["nonpad_tokens_per_sec"] = row["tokens_per_sec"] * (
            row["nonpad_fraction_inputs"] * task_feature_lengths["inputs"]
            + row["nonpad_fraction_targets"] * task_feature_lengths["targets"]) / (
                task_feature_lengths["inputs"] + task_feature_lengths["targets"])
        row["flops_per_step"] = float(flops_per_step)
        u = flops_lib.mfu(flops_per_step, per_step, jax.device_count(), peak)
        if u is not None:
          row["mfu"] = u
        writer.write(s, row)
        last_metrics = row
      writer.progress(step, last_metrics)
      pending = []
      window_start, window_steps = time.time(), 0

    def save_checkpoint(eval_metrics, force):
      """Saves the loop's current step (its state, data position and meta)."""
      flush(step)  # never checkpoint a NaN state
      if not with_norms:  # a preemption between logged steps: no grad_norm to check
        _check_params_finite(state.params, step, manager, model_dir)
      batches.save(step, batches_consumed)  # first: a finalised step never lacks it
      manager.save(step, state, meta_now(step), metrics=eval_metrics, force=force)

    with _Preemption() as preempt, jax.set_mesh(mesh):
      while step < num_steps:
        batch = next(batches)
        batches_consumed += 1
        if train_step is None:
          # Once the data has been read: a run stopped by its data leaves no model behind.
          ckpt_lib.write_model_info(model_dir, model_config, vocabulary)
          train_step = make_train_step(
              model_config, tx, schedule, mesh=mesh, rules=rules,
              state_shardings=state_shardings, batch_keys=sorted(batch),
              num_microbatches=num_microbatches, z_loss=z_loss, label_smoothing=label_smoothing,
              loss_normalizer=loss_normalizer, seed=seed, loss_stats_impl=loss_stats_impl)
        # What follows this step (known before it runs, except a preemption): its metrics
        # include the two norms only where they are logged, evaluated or a checkpoint is saved.
        nxt = step + 1
        is_last = nxt == num_steps
        stop_now = stop_after_steps is not None and nxt - first_step >= stop_after_steps
        log_now = nxt % log_period == 0 or is_last or nxt == first_step + 1
        eval_now = bool(eval_fn is not None and eval_period and (nxt % eval_period == 0
                                                                  or is_last))
        save_now = manager.should_save(nxt) or is_last or stop_now
        with_norms = bool(norm_metrics_every_step or log_now or eval_now or save_now)
        try:
          state, metrics = train_step(state, batch, np.asarray(with_norms))
        except jax.errors.JaxRuntimeError as e:
          if "RESOURCE_EXHAUSTED" not in str(e):
            raise
          raise FlanjaxError(_out_of_memory_message(
              e, step + 1, batch_size, num_microbatches, model_dir, manager)) from e
        step += 1
        window_steps += 1
        if _TEST_STEP_DELAY_S:
          time.sleep(_TEST_STEP_DELAY_S)
        pending.append((step, metrics, with_norms))
        if log_now:
          flush(step)
        eval_metrics = None
        if eval_now:
          flush(step)
          try:
            eval_metrics = eval_fn(step, state.params)
            if best_metric and best_metric not in (eval_metrics or {}):
              raise FlanjaxError(f"best_metric={best_metric!r} is not among the evaluation "
                                 f"metrics {sorted(eval_metrics or {})}; set train.best_metric "
                                 "to one of them.")
          except Exception:
            if save_now:  # the step's checkpoint first: a rerun resumes from it
              save_checkpoint(None, force=True)
              manager.wait()
            raise
          writer.write(step, eval_metrics, split="eval")
        preempted = preempt.check()
        if save_now or preempted or (eval_metrics and keep_best):
          save_checkpoint(eval_metrics, force=is_last or stop_now or preempted)
        if preempted and step < num_steps:  # on the last step: finished, as usual
          manager.wait()
          cause = "Ctrl-C" if preempt.interrupted else "SIGTERM received"
          writer.message(f"{cause}: saved checkpoint at step {step} in {model_dir}; "
                         "exiting (rerun the same command to resume).")
          last_metrics["preempted_at_step"] = step
          break
        if stop_now:
          break
      flush(step)
    manager.wait()
    if preempt.interrupted and step < num_steps:
      raise KeyboardInterrupt  # after the checkpoint, as Ctrl-C would have stopped the run
    if jax.process_index() == 0:
      writer.message(f"done: step {step}/{num_steps} in {time.time() - t_start:.1f}s; "
                     f"checkpoints in {model_dir}")
    failed = False
    return last_metrics
  finally:
    if writer is not None:
      writer.close()
    manager.close()
    if failed:
      files.remove_made_folders(made)


# T5Config fields that may change when a run resumes (speed, memory and precision knobs,
# dropout); every other field determines the parameters' shapes or the function computed.
RESUMABLE_CONFIG_CHANGES = ("dropout_rate", "dtype", "float32_attention_logits", "remat_policy",
                            "attention_impl", "norm_impl")


def merge_init_vocabulary(init: dict | None, mixture_vocab: dict | None,
                          init_checkpoint: str | None, mixture: str) -> dict | None:
  """The vocabulary a run from `init_checkpoint` on `mixture` records: refuses (FlanjaxError) an
  init checkpoint whose vocabulary is not the mixture's (the model would read ids it never
  learned; a gs:// model, not comparable here, is accepted). The same model is described by the
  init's record, with the mixture's extra ids where it records none (conversions of earlier
  flanjax) and the mixture's file where the init's is gone."""
  if not (init and mixture_vocab):
    return init or mixture_vocab
  if not ckpt_lib.same_vocabulary(init, mixture_vocab, unreadable_ok=True):
    if init.get("type") == "sentencepiece":
      fix = (f"seqio.SentencePieceVocabulary({init.get('path')!r}, "
             f"extra_ids={init.get('extra_ids', 100)})")
    else:
      fix = f"seqio.ByteVocabulary(extra_ids={init.get('extra_ids', 0)})"
    raise FlanjaxError(
        f"init_checkpoint {init_checkpoint} was trained with the vocabulary {init} (its "
        f"{ckpt_lib.MODEL_INFO_FILE}) but mixture {mixture!r} is tokenized with {mixture_vocab};"
        f" the model would read other token ids than it learned. Register the tasks with the "
        f"checkpoint's vocabulary ({fix}), or start from a checkpoint of the mixture's "
        "vocabulary.")
  merged = dict(init)
  if merged.get("extra_ids") is None and mixture_vocab.get("extra_ids") is not None:
    merged["extra_ids"] = mixture_vocab["extra_ids"]
  if merged.get("type") == "sentencepiece" and not ckpt_lib.readable_file(merged.get("path")) and (
      mixture_vocab.get("path")):
    merged["path"] = mixture_vocab["path"]
  return merged


def model_differences(saved: T5Config, now: T5Config) -> list[str]:
  """The T5Config fields in which `now` differs from `saved` that determine the parameters or
  the function (those a resume may not change)."""
  return [f.name for f in dataclasses.fields(T5Config)
          if f.name not in RESUMABLE_CONFIG_CHANGES
          and getattr(saved, f.name) != getattr(now, f.name)]


def _check_same_model(saved: T5Config, now: T5Config, model_dir: str):
  """Refuses to resume checkpoints of `saved` with a model config that differs in a field that
  determines the parameters or the function (before anything is restored or written)."""
  diff = model_differences(saved, now)
  if diff:
    detail = ", ".join(f"{f}={getattr(now, f)!r} (checkpoint: {getattr(saved, f)!r})"
                       for f in diff)
    from flanjax import gin_config
    binds = " ".join(gin_config.binding_flag("T5Config", f, getattr(saved, f)) for f in diff)
    raise FlanjaxError(
        f"model_dir {model_dir} holds checkpoints of a different model (fields {diff} differ: "
        f"{detail}); to resume, use the model settings saved in its {ckpt_lib.MODEL_INFO_FILE}"
        f" ({binds}, or leave out the bindings / model_overrides that change them), or use a "
        "new --model_dir. Nothing was changed.")


def _want_int(value, minimum=None, maximum=None, none=False) -> bool:
  if value is None:
    return none
  return (is_int(value) and (minimum is None or value >= minimum)
          and (maximum is None or value <= maximum))


def _want_number(value, minimum=None, maximum=None, none=False, above=None) -> bool:
  if value is None:
    return none
  if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
    return False
  # Written as "not below" so that NaN passes (tests force a NaN loss through z_loss).
  return (not (minimum is not None and value < minimum)
          and not (maximum is not None and value >= maximum)
          and not (above is not None and value <= above))


def _want_str(value, none=True) -> bool:
  return (value is None and none) or isinstance(value, str)


def _bad_value(binding: str, value, want: str, ok=None) -> FlanjaxError:
  head, _, name = binding.rpartition(".")
  return FlanjaxError(f"{head}: {name}={value!r} must be {want} (gin binding {binding})"
                      f"{unquote_hint(binding, value, ok)}.")


# The checks of train()'s arguments: name -> (predicate, what it must be).
_ARG_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{name: (lambda v: _want_int(v, 1), "an integer >= 1")
       for name in ("num_microbatches", "num_steps", "batch_size", "log_period",
                    "checkpoint_period")},
    "keep_checkpoints": (lambda v: _want_int(v, 1, none=True),
                         "an integer >= 1 (or None to keep every checkpoint)"),
    "keep_best": (lambda v: _want_int(v, 0), "an integer >= 0"),
    "eval_period": (lambda v: _want_int(v, 0), "an integer >= 0 (0: no periodic evaluation)"),
    "eval_max_examples": (lambda v: _want_int(v, 1, none=True),
                          "an integer >= 1 (or None for every example)"),
    # PRNGKey keeps a seed's low 32 bits: larger seeds would share init and dropout keys.
    "seed": (lambda v: _want_int(v, 0, 2**32 - 1), "an integer in [0, 2**32)"),
    "stop_after_steps": (lambda v: _want_int(v, 1, none=True), "an integer >= 1 or None"),
    "parameter_partitioning_dims": (lambda v: v in (1, 2) and _want_int(v), "1 or 2"),
    "activation_partitioning_dims": (lambda v: v in (1, 2) and _want_int(v), "1 or 2"),
    "z_loss": (lambda v: _want_number(v, 0.0), "a number >= 0"),
    "label_smoothing": (lambda v: _want_number(v, 0.0, 1.0), "a number in [0, 1)"),
    "peak_flops": (lambda v: _want_number(v, none=True, above=0),
                   "a number > 0 (FLOP/s per device) or None"),
    "loss_normalizer": (lambda v: v in losses.NORMALIZERS or _want_number(v, above=0),
                        f"one of {losses.NORMALIZERS} or a number > 0 (a fixed factor)"),
    **{name: (lambda v: isinstance(v, (bool, np.bool_)), "True or False")
       for name in ("synthetic_data", "pack", "async_checkpointing", "progress",
                    "norm_metrics_every_step")},
    **{name: (_want_str, "a string or None")
       for name in ("mixture", "eval_mixture", "best_metric", "tfds_data_dir")},
    "eval_split": (lambda v: _want_str(v, none=False), "a string (e.g. 'validation')"),
    "init_checkpoint": (lambda v: v is None or isinstance(v, (str, os.PathLike)),
                        "a checkpoint directory (a string) or None"),
    "trainable": (lambda v: v is None or isinstance(v, str) or callable(v) or (
        isinstance(v, Sequence) and all(isinstance(x, str) for x in v)),
                  "a regex, a list of regexes or None"),
    "model_config": (lambda v: v is None or isinstance(v, T5Config),
                     "a T5Config (train.model_config = @T5Config()) or None"),
    "model_overrides": (lambda v: v is None or isinstance(v, Mapping),
                        "a dict of T5Config fields, e.g. {'dropout_rate': 0.1}, or None"),
    "optimizer": (lambda v: isinstance(v, OptimizerConfig),
                  "an OptimizerConfig (train.optimizer = @OptimizerConfig())"),
}


def _check_train_args(args: Mapping[str, Any]) -> dict[str, int]:
  """Checks the types and ranges of train()'s arguments before anything else runs (a gin
  binding of the wrong type would otherwise fail deep inside); returns task_feature_lengths as
  a dict."""
  for name, (ok, want) in _ARG_CHECKS.items():
    if name in args and not ok(args[name]):
      raise _bad_value(f"train.{name}", args[name], want, ok)
  # An OptimizerConfig checks its types when built; this catches one changed since (its fields
  # set with object.__setattr__).
  check_field_types(args["optimizer"])
  lengths = _feature_lengths(args["task_feature_lengths"])
  if lengths is None:
    raise _bad_value("train.task_feature_lengths", args["task_feature_lengths"],
                     "a dict {'inputs': N, 'targets': M} of integers >= 1",
                     lambda v: _feature_lengths(v) is not None)
  if set(lengths) != {"inputs", "targets"}:
    raise FlanjaxError(f"task_feature_lengths={lengths}: give exactly 'inputs' and 'targets'.")
  if not _good_mesh_shape(args["mesh_shape"]):
    raise _bad_value("train.mesh_shape", args["mesh_shape"],
                     "a list of integers (data, model), one of them may be -1, e.g. [-1, 1]",
                     _good_mesh_shape)
  if args["loss_stats_impl"] not in losses.STATS_IMPLS:
    raise FlanjaxError(f"train: loss_stats_impl={args['loss_stats_impl']!r}: use one of "
                       f"{losses.STATS_IMPLS}.")
  # Settings that only an evaluation uses, which would otherwise be dropped unseen.
  evaluates = bool(args["eval_period"]) and (args["eval_mixture"] or args["eval_fn"])
  unused = [f"{k}={args[k]!r}" for k in ("keep_best", "eval_mixture", "eval_period")
            if args[k] and not evaluates]
  if unused:
    raise FlanjaxError(f"train: {', '.join(unused)} take effect only with periodic evaluation, "
                       "which needs both train.eval_period (every N steps) and "
                       "train.eval_mixture; set both, or drop them.")
  return {k: int(v) for k, v in lengths.items()}


def _feature_lengths(value) -> dict | None:
  """`value` as a dict of integers >= 1 (any keys), or None."""
  if isinstance(value, (str, bytes)):
    return None
  try:
    lengths = dict(value)
  except (TypeError, ValueError):
    return None
  return lengths if all(_want_int(v, 1) for v in lengths.values()) else None


def _good_mesh_shape(value) -> bool:
  return (isinstance(value, Sequence) and not isinstance(value, (str, bytes))
          and all(_want_int(s) and (s == -1 or s >= 1) for s in value))


def _out_of_memory_message(err, step, batch_size, num_microbatches, model_dir, manager) -> str:
  """What to change when a train step does not fit in the accelerator's memory."""
  good = manager.latest_step()
  pool = os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.75 (JAX's default)")
  return (
      f"train: out of accelerator memory at step {step} with batch_size={batch_size}, "
      f"num_microbatches={num_microbatches} on {jax.devices()[0].device_kind} "
      f"({str(err).splitlines()[0][:200]}). Nothing was saved from this step; the checkpoints "
      f"in {model_dir} are untouched (latest: {good if good is not None else 'none'}). To fit: "
      "lower train.batch_size, or raise train.num_microbatches (the same update from smaller "
      "pieces); set train.model_overrides={'remat_policy': 'full', 'scan_layers': True} "
      "(recompute activations); on several devices, train.parameter_partitioning_dims=2 "
      "(shard params and optimizer state); on GPUs, let JAX pool more of the memory with "
      f"XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 (now {pool}; the launch/ scripts set 0.9).")


INIT_KEY = "init_checkpoint"  # checkpoint meta: the run's starting checkpoint, None if random
OPT_KEY = "optimizer"  # checkpoint meta: the OptimizerConfig's fields
DECAY_KEY = "decay_steps"  # checkpoint meta: the steps the schedule decays over (None: no end)


def _check_same_optimizer_state(saved: Mapping[str, Any] | None, now: OptimizerConfig,
                                abstract_opt, model_dir: str, step: int, **make_kwargs) -> None:
  """Refuses, before the restore, a resume whose OptimizerConfig makes another optimizer state
  (its tree, shapes or dtypes) than the checkpoint's recorded one made: another optimizer,
  factoring, momentum or clipping on/off, ... (`make_kwargs`: the rest of make_optimizer's
  arguments, as this run passes them). A record this flanjax cannot rebuild is left to the
  restore's own layout check."""
  if not isinstance(saved, Mapping):
    return
  names = {f.name for f in dataclasses.fields(OptimizerConfig)}
  try:
    saved_cfg = OptimizerConfig(**{k: v for k, v in saved.items() if k in names})
    saved_tx, _ = make_optimizer(saved_cfg, **make_kwargs)
    saved_opt = jax.eval_shape(saved_tx.init, make_kwargs["params"])
  except Exception:  # noqa: BLE001 (another flanjax's record)
    return
  leaves, now_leaves = jax.tree.leaves(saved_opt), jax.tree.leaves(abstract_opt)
  if jax.tree.structure(saved_opt) == jax.tree.structure(abstract_opt) and all(
      (a.shape, a.dtype) == (b.shape, b.dtype) for a, b in zip(leaves, now_leaves)):
    return
  raise FlanjaxError(
      f"model_dir {model_dir} step {step} holds another optimizer state than this run's "
      f"settings make ({optimizer_changes(saved, now)}); resume with the checkpoint's "
      "optimizer settings, or start a new --model_dir from its parameters "
      f"(--gin.train.init_checkpoint=\"'{model_dir}'\"). Nothing was changed.")


def optimizer_changes(saved: Mapping[str, Any] | None, now: OptimizerConfig) -> str:
  """The OptimizerConfig fields in which `now` differs from a checkpoint's record, as
  "name=now (checkpoint: saved)" ("" when the same, or when the checkpoint records none)."""
  if not isinstance(saved, Mapping):
    return ""
  now = dataclasses.asdict(now)
  return ", ".join(f"{k}={now[k]!r} (checkpoint: {saved[k]!r})" for k in now
                   if k in saved and saved[k] != now[k])


def init_identity(init_checkpoint: str | None) -> str | None:
  """How a checkpoint's meta names the checkpoint its run started from (None: random)."""
  if not init_checkpoint:
    return None
  path = os.fspath(init_checkpoint)
  return path if "://" in path else os.path.realpath(path)


def latest_meta(model_dir: str) -> tuple[int, dict] | None:
  """(step, meta) of the latest complete training checkpoint in `model_dir`, None if none."""
  steps = ckpt_lib.finalized_steps(model_dir, ckpt_lib.TrainCheckpointManager.ITEMS)
  if not steps:
    return None
  manager = ckpt_lib.TrainCheckpointManager(model_dir, async_save=False)
  try:
    return steps[-1], manager.read_meta(steps[-1])
  finally:
    manager.close()


def check_resume_init(meta: Mapping[str, Any], model_dir: str, step: int,
                      init_checkpoint: str | None) -> None:
  """Refuses a resume that names an `init_checkpoint` other than the one the checkpoints in
  `model_dir` started from (recorded in their meta; older checkpoints record none): the resume
  would continue from `step` and never read it."""
  if not init_checkpoint or INIT_KEY not in meta:
    return
  recorded, now = meta[INIT_KEY], init_identity(init_checkpoint)
  if recorded != now:
    origin = recorded if recorded else "a random initialisation"
    raise FlanjaxError(f"model_dir {model_dir} step {step} was trained from {origin}, but "
                       f"init_checkpoint={init_checkpoint}: a resume continues from step {step} "
                       "and would not read it; use a new --model_dir to start from it, or "
                       "resume without init_checkpoint. Nothing was changed.")


def model_dir_as(message: str, flag: str) -> str:
  """A train error's advice for a command that names the model's folder by `flag` (heldout and
  quickstart's --output_dir): "use a new --model_dir" becomes "use a new FLAG"."""
  return message.replace("a new --model_dir", f"a new {flag}")


def _check_resume_settings(meta: Mapping[str, Any], model_dir: str, step: int,
                           now: Mapping[str, Any]):
  """Raises if the data settings differ from the checkpoint's (keys missing in old checkpoints
  are not checked)."""
  diff = [f"{k}={now[k]!r} (checkpoint: {meta[k]!r})" for k in now
          if k in meta and meta[k] != now[k]]
  if diff:
    raise FlanjaxError(f"model_dir {model_dir} step {step} was trained with other data settings: "
                       f"{', '.join(diff)}; use a new --model_dir, or the same settings to "
                       "resume.")


def _init_unjitted(config, rng):
  """Random params, initialised through the scanned model and unstacked when `config` is
  unscanned: XLA then compiles one layer body instead of every layer (T5-base's initialisation
  jit: 108 s -> ~10 s on an H100). Same distribution as an unscanned init, other random draws."""
  from flanjax import model as model_lib
  params = nn.unbox(model_lib._init_boxed(config.replace(scan_layers=True), rng, 8, 8))
  return params if config.scan_layers else model_lib.unscan_params(params, config)


def _load_init_params(init_checkpoint, config: T5Config, shardings):
  """Params of a flanjax checkpoint, converted to `config`'s layout and placed on `shardings`."""
  from flanjax import model as model_lib
  saved_cfg, params, _ = ckpt_lib.load_pretrained(init_checkpoint)
  if saved_cfg.scan_layers != config.scan_layers:
    params = (model_lib.scan_params(params, saved_cfg) if config.scan_layers
              else model_lib.unscan_params(params, saved_cfg))
  expected = model_lib.param_shapes(config)
  ckpt_lib.check_params_match(params, expected, init_checkpoint)
  return jax.tree.map(lambda x, s, sh: jax.device_put(np.asarray(x, s.dtype), sh),
                      params, expected, shardings)


def _default_eval_fn(config, vocabulary, eval_mixture, split, max_examples,
                     task_feature_lengths, model_dir, mesh):
  """Periodic evaluation through flanjax.evaluation (seqio tasks, generation + rank
  classification), imported lazily. Logged metrics: `<task>/<metric>`, `cluster/<cluster>`
  and `average` (the mean cluster score; a good `best_metric`)."""
  def fn(step, params):
    from flanjax import evaluation
    vocab = ckpt_lib.make_vocabulary(vocabulary) if vocabulary else None
    out = evaluation.evaluate_tasks(
        config, params, vocab, eval_mixture, split=split,
        output_dir=os.path.join(model_dir, "eval", f"step_{step}"), max_examples=max_examples,
        task_feature_lengths=dict(task_feature_lengths), mesh=mesh,
        title=f"step {step}")
    flat = {}
    for task, res in (out.get("tasks") or {}).items():
      for k, v in (res.get("metrics") or {}).items():
        if isinstance(v, (int, float)):
          flat[f"{task}/{k}"] = float(v)
    scores = []
    for cluster, res in (out.get("clusters") or {}).items():
      if isinstance(res.get("score"), (int, float)):
        flat[f"cluster/{cluster}"] = float(res["score"])
        scores.append(float(res["score"]))
    if scores:
      flat["average"] = sum(scores) / len(scores)
    return flat
  return fn


def _message(text):
  if jax.process_index() == 0:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
  """`flanjax train` / `python -m flanjax.train`: parses flags + gin, then calls `train()`."""
  from flanjax import distributed, gin_config
  from flanjax.gin_config import gin
  args = gin_config.parse_train_flags(list(sys.argv[1:] if argv is None else argv),
                                      prog="flanjax train")
  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
  gin_config.parse_gin(args.gin_file, args.gin_bindings, args.gin_search_paths)
  gin_config.check_train_bindings()
  kwargs = {}
  if args.model_dir:
    kwargs["model_dir"] = args.model_dir
  if args.tfds_data_dir:
    kwargs["tfds_data_dir"] = args.tfds_data_dir
  try:
    gin.get_configurable("train")(**kwargs)
  except FlanjaxError as e:  # gin appends "In call to configurable ..." lines: keep one line
    raise FlanjaxError(str(e).splitlines()[0]) from None
  if args.model_dir and jax.process_index() == 0:
    gin_config.write_operative_config(args.model_dir)
  return 0


if __name__ == "__main__":
  from flanjax.cli import main as cli_main
  sys.exit(cli_main(["train", *sys.argv[1:]]))
