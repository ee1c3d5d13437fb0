"""Meshes, logical axis rules and shardings (T5X-style partitioning over a `data` x `model` mesh).

The model names every parameter and main activation with T5X logical axes (`vocab, embed, mlp,
heads, kv, joined_kv, relpos_buckets, layers, batch, length, ...`); rules map those names to mesh
axes. `parameter_partitioning_dims=2` also shards parameters' `embed` dimension over `data`
(FSDP-like, T5X's `parameter_partitioning_dims=2`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from flanjax.errors import FlanjaxError

DATA, MODEL = "data", "model"


def standard_logical_axis_rules(parameter_partitioning_dims: int = 1,
                                activation_partitioning_dims: int = 1):
  """T5X's standard rules: batch over `data`; vocab/mlp/heads/joined_kv over `model`.

  With parameter_partitioning_dims=2 the params' `embed` axis is sharded over `data` (activations
  keep `batch` on `data`: flax assigns a mesh axis at most once per array, first rule first).
  With activation_partitioning_dims=2 activations' `embed` is sharded over `model`.
  """
  if parameter_partitioning_dims not in (1, 2):
    raise FlanjaxError(f"parameter_partitioning_dims={parameter_partitioning_dims}: use 1 or 2.")
  if activation_partitioning_dims not in (1, 2):
    raise FlanjaxError(f"activation_partitioning_dims={activation_partitioning_dims}: use 1 or 2.")
  rules = [
      ("batch", DATA),
      ("vocab", MODEL),
      ("mlp", MODEL),
      ("heads", MODEL),
      ("joined_kv", MODEL),
  ]
  if parameter_partitioning_dims == 2:
    rules.append(("embed", DATA))
  if activation_partitioning_dims == 2:
    rules.append(("embed", MODEL))
  rules += [
      ("embed", None),
      ("kv", None),
      ("length", None),
      ("activation_length", None),
      ("relpos_buckets", None),
      ("abspos_buckets", None),
      ("layers", None),
      ("stack", None),
      ("mlp_activations", None),
  ]
  return tuple(rules)


STANDARD_LOGICAL_AXIS_RULES = standard_logical_axis_rules()


def make_mesh(mesh_shape: Sequence[int], axis_names: Sequence[str] = (DATA, MODEL),
              devices=None) -> Mesh:
  """A Mesh over all devices (Auto axis types). One entry of mesh_shape may be -1 (inferred)."""
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices)
  shape = [int(s) for s in mesh_shape]
  if len(shape) != len(axis_names):
    raise FlanjaxError(f"mesh_shape {tuple(shape)} and axis_names {tuple(axis_names)} must have "
                       "the same length.")
  if shape.count(-1) > 1:
    raise FlanjaxError(f"mesh_shape {tuple(shape)}: at most one entry may be -1.")
  if -1 in shape:
    rest = math.prod(s for s in shape if s != -1)
    if rest <= 0 or n % rest:
      raise FlanjaxError(f"mesh_shape {tuple(shape)} cannot fill {n} devices: {n} is not "
                         f"divisible by {rest}.")
    shape[shape.index(-1)] = n // rest
  if any(s <= 0 for s in shape) or math.prod(shape) != n:
    raise FlanjaxError(
        f"mesh_shape {tuple(shape)} ({'x'.join(map(str, shape))} = {math.prod(shape)} devices) "
        f"does not match the {n} available devices; use e.g. mesh_shape=({n}, 1) or (-1, 1) "
        f"(axes {tuple(axis_names)}).")
  dev = np.asarray(devices, dtype=object).reshape(shape)
  return Mesh(dev, tuple(axis_names), axis_types=(AxisType.Auto,) * len(axis_names))


def fit_spec(spec: P, shape, mesh) -> P:
  """Drops mesh axes from dims they do not divide (e.g. 4 heads over an 8-way model axis)."""
  out = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = () if axes is None else (axes if isinstance(axes, tuple) else (axes,))
    size = math.prod(mesh.shape[a] for a in names) if names else 1
    out.append(axes if size == 1 or dim % size == 0 else None)
  return P(*out)


def logical_to_mesh_sharding(spec_tree, mesh: Mesh, rules=STANDARD_LOGICAL_AXIS_RULES):
  """Maps a pytree of logical PartitionSpecs to NamedShardings on `mesh`."""
  def one(spec):
    if spec is None:
      spec = P()
    axes = nn.logical_to_mesh_axes(tuple(spec), rules)
    return NamedSharding(mesh, P(*axes))
  return jax.tree.map(one, spec_tree, is_leaf=lambda x: isinstance(x, P) or x is None)


def param_shardings(config, mesh: Mesh, rules=STANDARD_LOGICAL_AXIS_RULES, shapes=None):
  """NamedShardings of a model's params: its logical axes through `rules`, with mesh axes
  dropped from dims they do not divide (`fit_spec`). `shapes`: the params' shapes (default:
  `model.param_shapes(config)`). Used by training, eval, infer and heldout alike."""
  from flanjax import model as model_lib
  if shapes is None:
    shapes = model_lib.param_shapes(config)
  logical = logical_to_mesh_sharding(model_lib.param_logical_axes(config), mesh, rules)
  return jax.tree.map(lambda sh, s: NamedSharding(mesh, fit_spec(sh.spec, s.shape, mesh)),
                      logical, shapes)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of a [batch, ...] input: batch over the `data` axis."""
  return NamedSharding(mesh, P(DATA))


def check_batch_size(batch_size: int, mesh: Mesh, num_microbatches: int = 1):
  """Raises a clear error when the global batch cannot be split over the data axis."""
  data = mesh.shape.get(DATA, 1)
  if batch_size % num_microbatches:
    raise FlanjaxError(f"batch_size={batch_size} is not divisible by "
                       f"num_microbatches={num_microbatches}.")
  micro = batch_size // num_microbatches
  if micro % data:
    raise FlanjaxError(
        f"batch_size={batch_size} (per microbatch {micro}) is not divisible by the mesh's data "
        f"axis of size {data}; use a batch size that is a multiple of "
        f"{data * num_microbatches}, or a different mesh_shape.")


def process_batch_slice(mesh: Mesh, global_batch_size: int) -> tuple[int, int, slice]:
  """This process's rows of a global batch sharded over `data`.

  Returns (shard_index, num_shards, rows): the process's shard among the distinct row ranges
  held by processes (processes on the same data slice share a shard and read the same rows).
  """
  sharding = batch_sharding(mesh)
  by_process: dict[int, set[tuple[int, int]]] = {}
  for device, index in sharding.devices_indices_map((global_batch_size,)).items():
    rows = index[0]
    start, stop, _ = rows.indices(global_batch_size)
    by_process.setdefault(device.process_index, set()).add((start, stop))
  ranges = {}
  for proc, slices in by_process.items():
    covered = set()
    for s, e in slices:
      covered.update(range(s, e))
    start, stop = min(covered), max(covered) + 1
    if len(covered) != stop - start:
      raise FlanjaxError(f"The mesh {dict(mesh.shape)} gives process {proc} non-contiguous "
                         "batch rows; build the mesh over devices ordered by process.")
    ranges[proc] = (start, stop)
  distinct = sorted(set(ranges.values()))
  mine = ranges[jax.process_index()]
  return distinct.index(mine), len(distinct), slice(*mine)


def global_batch(local_batch: dict, mesh: Mesh, global_batch_size: int) -> dict:
  """Assembles a process-local batch (this process's rows) into global sharded jax Arrays."""
  sharding = batch_sharding(mesh)
  out = {}
  for k, v in local_batch.items():
    v = np.asarray(v)
    out[k] = jax.make_array_from_process_local_data(sharding, v,
                                                    (global_batch_size,) + v.shape[1:])
  return out
