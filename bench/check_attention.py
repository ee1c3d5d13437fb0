"""GPU parity check: a fused attention path against the einsum reference, in gradients.

  PYTHONPATH=. python3 bench/check_attention.py [--size base] [--layers 2] [--impl pallas --packed]

Computes the training loss and the gradient of every parameter with `attention_impl=--impl`
(cuDNN, flanjax's Pallas kernel, or cuDNN's forward with the kernel's backward), with the bf16
einsum path (`attention_impl="xla"`) and with the einsum path in float32, the reference (same
params, same batch from --seed, right padding of different lengths and, unpacked, one row of
padding alone with loss weight 0; `--packed`: two or three examples per row with segment ids).
It prints ‖g − g_fp32‖ / ‖g_fp32‖ per parameter group for the fused path and for bf16 einsum.
The fused path passes when every gradient is finite, its worst error is at most 1.25 x bf16
einsum's (the noise of bf16 itself, ~2e-2) and its relative-position bias gradient is not zero
(the one cuDNN can silently drop when a mask is folded into the bias); else exit 1.
"""
from __future__ import annotations

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.append(REPO)

MARGIN = 1.25  # the fused path's worst gradient error may be this much bf16 einsum's


def rel_err(a, b) -> float:
  """‖a − b‖ / ‖b‖ in float64."""
  import numpy as np
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main(argv=None) -> int:
  p = argparse.ArgumentParser()
  p.add_argument("--size", default="base")
  p.add_argument("--layers", type=int, default=2)
  p.add_argument("--batch", type=int, default=4)
  p.add_argument("--input-len", type=int, default=128)
  p.add_argument("--target-len", type=int, default=32)
  p.add_argument("--patch", action="append", default=[])
  p.add_argument("--seed", type=int, default=0, help="the batch's random tokens")
  p.add_argument("--impl", default="cudnn", choices=("cudnn", "pallas", "cudnn_pallas"))
  p.add_argument("--packed", action="store_true", help="segment ids (cuDNN cannot: use pallas)")
  p.add_argument("--mesh", default="",
                 help="D,M: run the fused path under a (data, model) mesh of the visible GPUs "
                      "with the standard logical axis rules (the reference runs unsharded)")
  args = p.parse_args(argv)
  import importlib

  for spec in args.patch:
    mod, _, fn = spec.partition(":")
    getattr(importlib.import_module(mod), fn or "apply")()
  import jax
  import numpy as np

  from flanjax import losses
  from flanjax.config import get_config
  from flanjax.model import T5, init_params

  base = get_config(args.size, num_encoder_layers=args.layers, num_decoder_layers=args.layers)
  params = init_params(base, jax.random.PRNGKey(1))
  rng = np.random.default_rng(args.seed)
  b, te, td = args.batch, args.input_len, args.target_len
  enc = rng.integers(2, base.vocab_size, size=(b, te)).astype(np.int32)
  tgt = rng.integers(2, base.vocab_size, size=(b, td)).astype(np.int32)
  for i in range(b):  # right padding of different lengths
    enc[i, te - i * (te // 8):] = 0
  dec_in = np.concatenate([np.zeros((b, 1), np.int32), tgt[:, :-1]], axis=1)
  w = np.ones_like(tgt)
  if not args.packed and b >= 2:  # a row of padding alone (e.g. a padded batch): weight 0
    enc[-1], w[-1] = 0, 0
  segs = {}
  if args.packed:  # example s of a row: inputs [cuts_e[s], cuts_e[s+1]), targets likewise
    eseg = np.zeros((b, te), np.int32)
    dseg = np.zeros((b, td), np.int32)
    for i in range(b):
      n = 2 + i % 2
      ce = np.linspace(0, te - i * (te // 8), n + 1).astype(int)
      cd = np.linspace(0, td - i * (td // 8), n + 1).astype(int)
      for s_ in range(n):
        eseg[i, ce[s_]:ce[s_ + 1]] = s_ + 1
        dseg[i, cd[s_]:cd[s_ + 1]] = s_ + 1
        dec_in[i, cd[s_]] = 0  # each example's targets start with the start token
    enc, dec_in, w = np.where(eseg > 0, enc, 0), np.where(dseg > 0, dec_in, 0), (dseg > 0)
    segs = {"encoder_segment_ids": eseg, "decoder_segment_ids": dseg}

  def loss_fn(cfg):
    model = T5(cfg)

    def f(params):
      logits = model.apply({"params": params}, enc, dec_in, **segs)
      return losses.weighted_sums(logits, tgt, w)["loss"] / w.sum()
    return jax.jit(jax.value_and_grad(f))

  results = {}
  for impl in (args.impl, "xla", "xla_fp32"):
    cfg = (base.replace(attention_impl="xla", dtype="float32") if impl == "xla_fp32"
           else base.replace(attention_impl=impl))
    step = loss_fn(cfg)
    results[impl] = step(params)
    if args.mesh and impl == args.impl:
      import flax.linen as nn

      from flanjax import partitioning
      shape = tuple(int(x) for x in args.mesh.split(","))
      with jax.set_mesh(partitioning.make_mesh(shape)), \
           nn.logical_axis_rules(partitioning.STANDARD_LOGICAL_AXIS_RULES):
        sharded = step(params)
      # the same path with and without the mesh: only the summation order may differ
      diff = max(rel_err(a, b) for a, b in zip(jax.tree.leaves(sharded[1]),
                                               jax.tree.leaves(results[impl][1])))
      print(f"mesh {args.mesh} against unsharded ({impl}): worst grad rel_err {diff:.2e}")
      results[impl] = sharded
  (l_f, g_f), (l_b, g_b), (l_r, g_r) = (results[k] for k in (args.impl, "xla", "xla_fp32"))
  print(f"loss fused {float(l_f):.6f} bf16 einsum {float(l_b):.6f} fp32 {float(l_r):.6f}")
  ok = bool(np.isfinite(float(l_f))) and (
      abs(float(l_f) - float(l_r)) <= MARGIN * abs(float(l_b) - float(l_r)) + 1e-3 * abs(float(l_r)))
  flat_f = jax.tree_util.tree_flatten_with_path(g_f)[0]
  worst_f = worst_b = 0.0
  for (path, gf), gb, gr in zip(flat_f, jax.tree.leaves(g_b), jax.tree.leaves(g_r)):
    name = "/".join(str(getattr(k, "key", k)) for k in path)
    if not np.all(np.isfinite(np.asarray(gf, np.float64))):
      print(f"  {name}: fused gradient NOT FINITE")
      ok = False
      continue
    rel_f, rel_b = rel_err(gf, gr), rel_err(gb, gr)
    if "relpos" in name or rel_f > MARGIN * rel_b:
      print(f"  {name:60s} rel_err fused {rel_f:.2e} bf16 einsum {rel_b:.2e}  "
            f"|g_fp32| {np.linalg.norm(np.asarray(gr, np.float64)):.3e}")
    if "relpos" in name and np.linalg.norm(np.asarray(gf, np.float64)) == 0:
      print(f"  {name}: fused gradient is ZERO")
      ok = False
    worst_f, worst_b = max(worst_f, rel_f), max(worst_b, rel_b)
  ok = ok and worst_f <= MARGIN * worst_b
  where = f", mesh {args.mesh}" if args.mesh else ""
  print(f"attention parity ({args.impl}{', packed' if args.packed else ''}{where}): worst grad "
        f"rel_err to fp32 {worst_f:.2e}, bf16 einsum's {worst_b:.2e} (limit {MARGIN} x): "
        f"{'OK' if ok else 'FAIL'}")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
