"""Time of the optimizer part of a train step alone: update + apply for a size's parameters.

  PYTHONPATH=. python3 bench/optimizer_step.py --sizes base,large [--steps 20]

Prints one JSON line per (size, variant): ms per update, parameter bytes, and the bandwidth that
would be if every pass moved the fp32 parameters once (`passes_at_3tbs`: the time in units of
one read of the fp32 parameters at 3 TB/s). Variants:
  adafactor        flanjax's optimizer (`make_optimizer(OptimizerConfig())`: optax.adafactor's
                   parts with `optimizers.scale_by_param_rms`, T5 defaults, each layer stack
                   updated at once) + apply_updates, as in the train step
  adafactor_optax  the same with optax's parameter scale (`scale_by_param_block_rms`, which
                   reduces each param twice: before row 121; `bench.variants.param_rms_optax`)
  adafactor_per_leaf  the same, one leaf at a time (`stacked_layers=False`: before call 28)
  adafactor_norms  the same plus the step's two metrics (global grad and param norms)
  sgd              params - lr * grads: the bandwidth floor of any update (3 fp32 passes)
No TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.append(REPO)

VARIANTS = ("adafactor", "adafactor_optax", "adafactor_per_leaf", "adafactor_norms", "sgd")


def time_variant(size: str, variant: str, steps: int, profile_dir: str | None = None,
                 scanned: bool = False, bf16_grads: bool = False) -> dict:
  import jax
  import jax.numpy as jnp
  import optax

  from flanjax import model as model_lib
  from flanjax.config import get_config
  from flanjax.optimizers import OptimizerConfig, make_optimizer

  config = get_config(size, scan_layers=scanned)
  shapes = model_lib.param_shapes(config)
  from flanjax import optimizers
  ours = optimizers.scale_by_param_rms
  if variant == "adafactor_optax":  # the train benchmark's patch, undone after the build
    from bench import variants
    variants.param_rms_optax()
  try:
    tx, _ = make_optimizer(OptimizerConfig(stacked_layers=variant != "adafactor_per_leaf"),
                           params=shapes)
  finally:
    optimizers.scale_by_param_rms = ours
  leaves, treedef = jax.tree.flatten(shapes)
  # Deterministic values of normal-like spread, cheap to compile (jax.random.normal over
  # T5-large's params compiled for over 100 s on the GPU machine's JAX 0.11: call 139).
  params = jax.jit(lambda: jax.tree.unflatten(treedef, [
      jnp.sin(jnp.arange(s.size, dtype=jnp.float32).reshape(s.shape) * (0.37 + 0.01 * i))
      * 0.07 for i, s in enumerate(leaves)]))()
  grads = jax.jit(lambda p: jax.tree.map(lambda x: x * 1e-3 + 1e-4, p))(params)
  if bf16_grads:  # as in the train step: the layers' dW GEMMs write bf16 (call 158's HLO)
    from flanjax.train import unscanned_layer_kernel
    grads = jax.tree_util.tree_map_with_path(
        lambda path, g: g.astype(jnp.bfloat16) if unscanned_layer_kernel(path) else g, grads)
  opt_state = jax.jit(tx.init)(params)

  def update(params, opt_state, grads):
    if variant == "sgd":
      return jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads), opt_state, jnp.zeros(())
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    extra = jnp.zeros(())
    if variant == "adafactor_norms":
      extra = optax.tree.norm(grads) + optax.tree.norm(params)
    return params, opt_state, extra

  step = jax.jit(update, donate_argnums=(0, 1))
  t0 = time.perf_counter()
  compiled = step.lower(params, opt_state, grads).compile()
  compile_s = time.perf_counter() - t0
  print(f"{size} {variant}: compiled in {compile_s:.1f} s", file=sys.stderr, flush=True)
  for _ in range(3):
    params, opt_state, extra = compiled(params, opt_state, grads)
  jax.block_until_ready(params)
  t0 = time.perf_counter()
  for _ in range(steps):
    params, opt_state, extra = compiled(params, opt_state, grads)
  jax.block_until_ready((params, extra))
  dt = (time.perf_counter() - t0) / steps
  if profile_dir:
    import glob
    d = os.path.join(profile_dir, f"{size}_{variant}")
    jax.profiler.start_trace(d, create_perfetto_trace=True)
    for _ in range(3):
      params, opt_state, extra = compiled(params, opt_state, grads)
    jax.block_until_ready(params)
    jax.profiler.stop_trace()
    hlo = os.path.join(d, "hlo.txt")
    with open(hlo, "w") as f:
      f.write(compiled.as_text())
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import profile_attribution
    trace = sorted(glob.glob(os.path.join(d, "**", "*perfetto_trace.json.gz"), recursive=True))[-1]
    profile_attribution.attribute(trace, hlo, steps=3, top=15, out=sys.stderr)
  nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params))
  return {"bench": "optimizer_step", "size": size, "variant": variant, "scanned": scanned,
          "bf16_grads": bf16_grads, "ms": dt * 1e3,
          "param_gb": nbytes / 1e9, "num_leaves": len(jax.tree.leaves(params)),
          "passes_at_3tbs": dt / (nbytes / 3e12), "compile_s": compile_s,
          "device_kind": jax.devices()[0].device_kind}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--sizes", default="base")
  p.add_argument("--variants", default=",".join(VARIANTS))
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--profile-dir", default=None, help="trace 3 updates; top kernels to stderr")
  p.add_argument("--scanned", action="store_true", help="the scanned layout (scan_layers=True)")
  p.add_argument("--patch", action="append", default=[], metavar="MODULE:FUNC",
                 help="call this function first (bench/variants.py), as train_throughput.py")
  p.add_argument("--bf16-grads", action="store_true",
                 help="the layers' kernel gradients in bf16, as the train step's GEMMs write them")
  args = p.parse_args(argv)
  from bench.train_throughput import _apply_patches
  _apply_patches(args.patch)
  for size in args.sizes.split(","):
    for v in args.variants.split(","):
      if v not in VARIANTS:
        p.error(f"--variants: unknown {v!r}; use some of {VARIANTS}")
      print(json.dumps(time_variant(size, v, args.steps, args.profile_dir, args.scanned,
                                      args.bf16_grads)), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
