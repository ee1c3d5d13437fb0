"""Optimizers and learning-rate schedules (optax): Adafactor with T5 defaults, AdamW.

`OptimizerConfig` is bound in gin (`OptimizerConfig.learning_rate = 1e-3` ...);
`make_optimizer(cfg, trainable=None)` returns (optax transformation, schedule).
"""
from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from flanjax.config import check_field_types
from flanjax.errors import FlanjaxError
from flanjax.model import LAYER_KEY

OPTIMIZERS = ("adafactor", "adamw")
SCHEDULES = ("constant", "rsqrt", "cosine", "linear")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """Optimizer + schedule hyper-parameters (defaults: T5 fine-tuning with Adafactor)."""

  name: str = "adafactor"
  learning_rate: float = 1e-3
  # "constant": peak after a linear warm-up (warmup_steps may be 0).
  # "rsqrt": linear warm-up to the peak, then peak * sqrt(warmup_steps / step) (T5 pre-training).
  # "cosine": linear warm-up, cosine decay to end_learning_rate at decay_steps.
  # "linear": linear warm-up, linear decay to end_learning_rate at decay_steps.
  schedule: str = "constant"
  warmup_steps: int = 0
  decay_steps: int | None = None  # cosine/linear: the last step (default: the run's num_steps)
  end_learning_rate: float = 0.0
  # Adafactor (T5 / T5X defaults).
  decay_rate: float = 0.8
  clipping_threshold: float | None = 1.0
  multiply_by_parameter_scale: bool = True
  factored: bool = True
  min_dim_size_to_factor: int = 128
  momentum: float | None = None
  # AdamW.
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  weight_decay: float = 0.0
  # Optional global-norm gradient clipping before the optimizer (None: off, T5's default).
  max_grad_norm: float | None = None
  # Update the unscanned layers of each stack (encoder/decoder layers_0..N-1) in one batched
  # computation (`per_layer`): same maths as one leaf per layer, ~N x fewer GPU kernels.
  stacked_layers: bool = True
  # Adafactor's update clipping and parameter scale on a scanned layer stack (scan_layers=True):
  # "layer" (default) reduces each layer's slice, as T5X and as the same model unscanned (the
  # same updates, so scan_layers changes only the layout); "stack" the whole [L, ...] leaf as
  # one block (flanjax's earlier default; the same step time, bench/NOTES.md row 150).
  scanned_block_rms: str = "layer"

  def __post_init__(self):
    check_field_types(self)  # first: a quoted gin value ('1e-3') is a string
    if self.scanned_block_rms not in ("stack", "layer"):
      raise FlanjaxError(f"OptimizerConfig.scanned_block_rms={self.scanned_block_rms!r}: use "
                         "'stack' or 'layer'.")
    if self.name not in OPTIMIZERS:
      raise FlanjaxError(f"OptimizerConfig.name={self.name!r}: use one of {OPTIMIZERS}.")
    if self.schedule not in SCHEDULES:
      raise FlanjaxError(f"OptimizerConfig.schedule={self.schedule!r}: use one of {SCHEDULES}.")
    if self.learning_rate <= 0:
      raise FlanjaxError(f"OptimizerConfig.learning_rate must be > 0, got {self.learning_rate}.")
    if self.warmup_steps < 0:
      raise FlanjaxError(f"OptimizerConfig.warmup_steps must be >= 0, got {self.warmup_steps}.")


def decay_length(cfg: OptimizerConfig, num_steps: int | None) -> int | None:
  """The steps over which `cfg`'s schedule decays: decay_steps, else the run's num_steps
  (None for the constant and rsqrt schedules, which have no end)."""
  if cfg.schedule in ("constant", "rsqrt"):
    return None
  return cfg.decay_steps or num_steps


def make_schedule(cfg: OptimizerConfig, num_steps: int | None = None) -> optax.Schedule:
  """The learning-rate schedule of `cfg` (a function of the step count, 0-based)."""
  peak, warm = cfg.learning_rate, cfg.warmup_steps

  def warmup(step):
    if warm == 0:
      return jnp.asarray(peak, jnp.float32)
    return peak * jnp.minimum(1.0, (step + 1) / warm)

  if cfg.schedule == "constant":
    return lambda step: warmup(jnp.asarray(step, jnp.float32))
  if cfg.schedule == "rsqrt":
    def rsqrt(step):
      step = jnp.asarray(step, jnp.float32)
      return jnp.where(step + 1 <= max(warm, 1), warmup(step),
                       peak * jnp.sqrt(max(warm, 1) / (step + 1)))
    return rsqrt
  decay = decay_length(cfg, num_steps)
  if not decay:
    raise FlanjaxError(f"schedule={cfg.schedule!r} needs OptimizerConfig.decay_steps "
                       "(or the run's num_steps).")
  if decay <= warm:
    raise FlanjaxError(f"OptimizerConfig.decay_steps={decay} must exceed warmup_steps={warm}.")
  if cfg.schedule == "cosine":
    main = optax.cosine_decay_schedule(peak, decay - warm, alpha=cfg.end_learning_rate / peak)
  else:
    main = optax.linear_schedule(peak, cfg.end_learning_rate, decay - warm)

  def sched(step):
    step = jnp.asarray(step, jnp.float32)
    return jnp.where(step + 1 <= warm, warmup(step), main(jnp.maximum(step + 1 - warm, 0)))
  return sched


SCANNED_KEY = "layers"  # a scanned layer stack's subtree (model.py: nn.scan(name="layers"))


def has_scanned_stacks(tree) -> bool:
  """Whether a param tree holds a scanned layer stack (`<stack>/layers/...`)."""
  return isinstance(tree, dict) and any(isinstance(sub, dict) and SCANNED_KEY in sub
                                        for sub in tree.values())


def _block_rms(path, x, scanned: bool):
  """RMS of a parameter block: the whole leaf; with `scanned`, a scanned stack's leaf (under
  `<stack>/layers/`, a leading layer axis) per layer ([L, 1, ...]), as T5X's `layers` factor
  rule (FactorDim.BATCH) and as the same layer unscanned. (`per_layer`'s batched trees use the
  same path inside its vmap, over one layer each: there `scanned` is False.)"""
  keys = [getattr(k, "key", None) for k in path]
  if scanned and x.ndim > 1 and len(keys) > 2 and keys[1] == SCANNED_KEY:
    return _per_layer_rms(x)
  return jnp.sqrt(jnp.mean(jnp.square(x)))


def _per_layer_rms(x):
  """RMS of each slice x[l] of a [L, ...] leaf, as [L, 1, ...]: sums of squares over [L, c]
  rows of each layer first, then over c. As one reduction, XLA fused the L per-layer sums into
  Adafactor's update fusions, which it then emitted as Triton fusions at ~4 ms each: +30 % on
  T5-large's scanned step (bench/NOTES.md rows 149-150). The barrier keeps the partial sums
  ([L, c], a few KB) a buffer of their own."""
  num_layers, n = x.shape[0], x.size // x.shape[0]
  c = next(c for c in (256, 128, 64, 32, 16, 8, 4, 2, 1) if n % c == 0)
  partial = jnp.sum(jnp.square(x.reshape(num_layers, c, n // c)), axis=2)  # [L, c]
  partial = jax.lax.optimization_barrier(partial)
  rms = jnp.sqrt(jnp.sum(partial, axis=1) / n)  # [L]
  return rms.reshape((num_layers,) + (1,) * (x.ndim - 1))


def clip_by_block_rms(threshold: float, scanned: bool = False) -> optax.GradientTransformation:
  """`optax.clip_by_block_rms` (each update divided by max(1, its RMS / threshold)); with
  `scanned`, a scanned stack's leaves per layer (`_block_rms`), where optax's clips the whole
  stack as one block."""

  def update_fn(updates, state, params=None):
    del params
    updates = jax.tree_util.tree_map_with_path(
        lambda path, u: u / jnp.maximum(1.0, _block_rms(path, u, scanned) / threshold), updates)
    return updates, state

  return optax.GradientTransformation(optax.init_empty_state, update_fn)


def scale_by_param_rms(min_scale: float = 1e-3,
                       scanned: bool = False) -> optax.GradientTransformation:
  """`optax.scale_by_param_block_rms`: each update times max(RMS of its param, min_scale), with
  one reduction of the param where optax's takes two (its `safe_root_mean_squares` reduces
  again over a `where`-masked copy, for gradients through the RMS, which no optimizer step
  takes): one read of every parameter less per step, the same values and (empty) state. With
  `scanned`, a scanned stack's leaves are scaled per layer (`_block_rms`)."""

  def update_fn(updates, state, params=None):
    if params is None:
      raise FlanjaxError("scale_by_param_rms needs the params.")
    updates = jax.tree_util.tree_map_with_path(
        lambda path, u, p: u * jnp.maximum(_block_rms(path, p, scanned), min_scale), updates,
        params)
    return updates, state

  return optax.GradientTransformation(optax.init_empty_state, update_fn)


def adafactor(cfg: OptimizerConfig, schedule, scanned: bool = False
              ) -> optax.GradientTransformation:
  """`optax.adafactor` with `cfg`'s settings, built from the same parts in the same order (so
  the same state: checkpoints move between the two), the parameter scale from
  `scale_by_param_rms`. `scanned` (params with scanned layer stacks): update clipping and
  parameter scale per layer of a stack, so that scanning the layers changes no update."""
  parts = [optax.scale_by_factored_rms(  # optax.adafactor's step offset and epsilon
      cfg.factored, cfg.decay_rate, step_offset=0,
      min_dim_size_to_factor=cfg.min_dim_size_to_factor, epsilon=1e-30)]
  if cfg.clipping_threshold is not None:
    parts.append(clip_by_block_rms(cfg.clipping_threshold, scanned))
  parts.append(optax.scale_by_learning_rate(schedule, flip_sign=False))
  if cfg.multiply_by_parameter_scale:
    parts.append(scale_by_param_rms(scanned=scanned))
  if cfg.momentum is not None:
    parts.append(optax.ema(cfg.momentum, debias=False, accumulator_dtype=jnp.float32))
  parts.append(optax.scale(-1))
  return optax.chain(*parts)


def _base_optimizer(cfg: OptimizerConfig, schedule,
                    scanned: bool = False) -> optax.GradientTransformation:
  if cfg.name == "adafactor":
    return adafactor(cfg, schedule, scanned)
  return optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)


def param_path_names(params) -> list[str]:
  """'/'-joined names of the param leaves ('encoder/layers_0/mlp/wo/kernel', ...)."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return ["/".join(str(getattr(k, "key", k)) for k in path) for path, _ in flat]


def trainable_mask(params, trainable: str | Sequence[str] | Callable[[str], bool] | None):
  """A bool pytree: which params train. `trainable`: regex(es) over param paths, or a predicate.

  A regex names a param when it matches its whole path or a whole leading part of it (a
  subtree): "decoder" or "decoder/.*" trains the decoder, "encoder/layers_1" that layer only
  (not layers_10). None trains everything.
  """
  if trainable is None:
    return jax.tree.map(lambda _: True, params)
  if callable(trainable):
    pred = trainable
  else:
    pats = [trainable] if isinstance(trainable, str) else list(trainable)
    compiled = [re.compile(p) for p in pats]
    def pred(name):
      parts = name.split("/")
      heads = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
      return any(c.fullmatch(h) for c in compiled for h in heads)
  names = param_path_names(params)
  flags = [bool(pred(n)) for n in names]
  if not any(flags):
    raise FlanjaxError(f"trainable={trainable!r} matches no parameter; parameter names look like "
                       f"{names[:3]}.")
  return jax.tree.unflatten(jax.tree.structure(params), flags)


def _layer_stacks(tree) -> dict[str, int]:
  """Top-level subtrees holding unscanned layers `layers_0` ... `layers_{N-1}`: name -> N.

  A scanned stack (`layers`, arrays with a leading layer axis) is not batched: vmapping the
  update over its layer axis measured 104 ms against 8.8 ms as one leaf for T5-large on an H100
  (bench/NOTES.md row 42), so it stays one leaf; Adafactor's factored statistics keep its layer
  axis; its update clipping and parameter scale reduce each layer's slice (`_block_rms`: the
  updates of the same model unscanned), or the whole stack with
  `OptimizerConfig.scanned_block_rms="stack"`.
  """
  out = {}
  if not isinstance(tree, dict):
    return out
  for name, sub in tree.items():
    if not isinstance(sub, dict):
      continue
    idx = sorted(int(m.group(1)) for k in sub if (m := LAYER_KEY.match(k)))
    if idx and idx == list(range(len(idx))) and jax.tree.leaves(sub["layers_0"]):
      out[name] = len(idx)
  return out


def _split_stacks(tree, stacks: dict[str, int]):
  """(rest, {name: {name: {"layers": stacked}}}): each stack's layers on a new leading axis,
  under their full path (for the state's shardings)."""
  rest, stacked = dict(tree), {}
  for name, n in stacks.items():
    sub = dict(tree[name])
    layers = [sub.pop(f"layers_{i}") for i in range(n)]
    stacked[name] = {name: {"layers": jax.tree.map(lambda *xs: jnp.stack(xs), *layers)}}
    rest[name] = sub
  return rest, stacked


def _join_stacks(rest, stacked, stacks: dict[str, int]):
  out = dict(rest)
  for name, n in stacks.items():
    sub = dict(rest[name])
    layers = stacked[name][name]["layers"]
    for i in range(n):
      sub[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], layers)
    out[name] = sub
  return out


class PerLayerState(NamedTuple):
  rest: optax.OptState  # the inner optimizer's state of the params outside the layer stacks
  stacks: dict  # stack name -> the inner state of that stack, batched over a leading layer axis


def per_layer(inner: optax.GradientTransformation,
              group_size: int | None = None) -> optax.GradientTransformation:
  """Runs `inner` on all the unscanned layers of each stack at once (`layers_0` ...: stacked on a
  new axis, `jax.vmap` over it), as if each layer's parameter were its own leaf.

  The updates are the ones `inner` gives per leaf (Adafactor's factored statistics, update
  clipping and parameter scale stay per layer and per parameter), in the params' own layout;
  the state keeps each stack batched. On GPUs this turns N small kernels per parameter kind
  into one: T5-large's Adafactor update alone took 14.9 ms instead of 43.4 ms on an H100, and
  its train step compiles in 58 s instead of 75 s (bench/NOTES.md rows 40-41). Every layer of a
  stack must have the same parameters (frozen ones included: see `make_optimizer`). Scanned
  stacks are left to `inner` as they are (see `_layer_stacks`). `group_size` updates a stack's
  layers that many at a time (the same updates and state layout): at T5-xl on an H100 groups of
  8 ran the update alone in 24.5 ms against 26.2 for all 24 layers, but the train steps tied
  (xl -0.5 %, large and base within 0.4 %; bench/NOTES.md row 139), so the default stays None
  (the whole stack).
  """

  if group_size is not None and group_size < 1:
    raise FlanjaxError(f"per_layer(group_size={group_size}): use a positive number of layers, "
                       "or None for the whole stack.")

  def init_fn(params):
    stacks = _layer_stacks(params)
    rest, stacked = _split_stacks(params, stacks)
    return PerLayerState(rest=inner.init(rest),
                         stacks={k: jax.vmap(inner.init)(v) for k, v in stacked.items()})

  def update_fn(updates, state, params=None):
    if params is None:
      raise FlanjaxError("per_layer(...).update needs the params.")
    stacks = _layer_stacks(params)
    if set(stacks) != set(state.stacks):
      raise FlanjaxError(f"per_layer: the params' layer stacks {sorted(stacks)} are not the "
                         f"optimizer state's {sorted(state.stacks)}.")
    g_rest, g_stacked = _split_stacks(updates, stacks)
    p_rest, p_stacked = _split_stacks(params, stacks)
    u_rest, s_rest = inner.update(g_rest, state.rest, p_rest)
    u_stacked, s_stacked = {}, {}
    for name, n in stacks.items():
      size = group_size or n
      parts = []
      for lo in range(0, n, size):
        cut = functools.partial(jax.tree.map, lambda x, lo=lo, hi=lo + size: x[lo:hi])
        parts.append(jax.vmap(inner.update)(cut(g_stacked[name]), cut(state.stacks[name]),
                                            cut(p_stacked[name])))
      u_stacked[name], s_stacked[name] = jax.tree.map(
          lambda *xs: xs[0] if len(xs) == 1 else jnp.concatenate(xs), *parts)
    return (_join_stacks(u_rest, u_stacked, stacks),
            PerLayerState(rest=s_rest, stacks=s_stacked))

  return optax.GradientTransformation(init_fn, update_fn)


def _layers_uniform(mask) -> bool:
  """Whether every layer of each stack trains the same parameters (a `trainable_mask`)."""
  for name, n in _layer_stacks(mask).items():
    first = jax.tree.leaves(mask[name]["layers_0"])
    if any(jax.tree.leaves(mask[name][f"layers_{i}"]) != first for i in range(1, n)):
      return False
  return True


def make_optimizer(cfg: OptimizerConfig, params=None, trainable=None, num_steps: int | None = None):
  """Returns (optax transformation, schedule). Frozen params (see `trainable_mask`) get zero
  updates and no optimizer state. `params` (or their shapes): with them, a model's scanned
  layer stacks get Adafactor's per-layer block RMS when `cfg.scanned_block_rms="layer"` (see
  `adafactor`; without them, a scanned leaf is reduced whole), and layer stacks are updated at
  once (`per_layer`) only where there are some."""
  schedule = make_schedule(cfg, num_steps)
  # Scanned stacks with scanned_block_rms="layer": per-layer block RMS (a scanned model then gets
  # its unscanned twin's updates; needs the params).
  tx = _base_optimizer(cfg, schedule, scanned=(cfg.scanned_block_rms == "layer" and params is not
                                               None and has_scanned_stacks(params)))
  mask = None
  if trainable is not None:
    if params is None:
      raise FlanjaxError("make_optimizer(trainable=...) needs the params (or their shapes).")
    mask = trainable_mask(params, trainable)
  # Layers frozen unevenly, or no unscanned stacks: one leaf at a time, the same maths (and the
  # state layout of scanned models' checkpoints is unchanged).
  if (cfg.stacked_layers and (params is None or _layer_stacks(params))
      and (mask is None or _layers_uniform(mask))):
    tx = per_layer(tx)
  if cfg.max_grad_norm is not None:  # the global norm over all (trainable) params
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), tx)
  if mask is not None:
    labels = jax.tree.map(lambda m: "train" if m else "freeze", mask)
    tx = optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()}, labels)
  return tx, schedule
