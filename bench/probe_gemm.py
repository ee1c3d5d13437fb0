"""Times each GEMM signature of a train step alone (the JSON of `bench/gemm_efficiency.py`).

  python3 bench/probe_gemm.py SIGNATURES.json[,MORE.json] [--top 20] [--steps 10] [--reps 6]

For each signature: `jax.lax.dot_general` with its shapes, dimension numbers and dtypes
(bf16 inputs, its output dtype; epilogues left out), jitted with the benchmarks' XLA flags, so
cuBLAS picks its algorithm for the shape alone. Prints one JSON line per signature (its time
alone, and in the step where the JSON has it) and the sum over the step's GEMMs. A shape that is
slow alone too is cuBLAS's limit at that shape. Mind the clock: these short bursts run near the
full 1980 MHz, while a training step holds the H100 at its 700 W power cap (~1590 MHz median,
bench/NOTES.md row 125), so the sum alone is a few percent under the step's GEMM time;
`--steps 400` sustains a shape long enough to reach the cap.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xla_flags  # noqa: E402

os.environ.setdefault("XLA_FLAGS", xla_flags.DEFAULT)

_DTYPES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}


def main(argv=None) -> int:
  p = argparse.ArgumentParser()
  p.add_argument("signatures", help="comma list of JSON files (each's first --top rows)")
  p.add_argument("--top", type=int, default=20)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--reps", type=int, default=6, help="GEMMs per timed call")
  args = p.parse_args(argv)
  import jax
  import jax.numpy as jnp
  from timing import ms_per_call

  @functools.partial(jax.jit, static_argnums=(0, 1, 2))
  def make(shape, dtype, phase):  # deterministic values, cheap to compile
    return jnp.sin(jnp.arange(math.prod(shape), dtype=jnp.float32) * phase).reshape(
        shape).astype(dtype)

  rows = []
  for path in args.signatures.split(","):
    with open(path) as f:
      rows += json.load(f)[:args.top]
  total_alone = total_flops = 0.0
  for r in rows:
    lt, rt, ot = (_DTYPES.get(t, "bfloat16") for t in r["dtypes"])
    d = r["dims"]
    dn = ((tuple(d["lhs_contracting_dimensions"]), tuple(d["rhs_contracting_dimensions"])),
          (tuple(d["lhs_batch_dimensions"]), tuple(d["rhs_batch_dimensions"])))

    # `reps` GEMMs of one executable over different lhs arrays: small GEMMs are not timed as
    # Python dispatches.
    lhs = [make(tuple(r["lhs"]), lt, 0.37 + i) for i in range(args.reps)]
    rhs = make(tuple(r["rhs"]), rt, 0.11)
    fn = jax.jit(lambda a, b, dn=dn, ot=ot: [jax.lax.dot_general(
        x, b, dn, preferred_element_type=jnp.dtype(ot)) for x in a])
    alone = ms_per_call(fn, lhs, rhs, steps=args.steps, warmup=2) / args.reps
    in_step = r.get("ms_per_call")  # absent for signatures from the HLO alone
    total_alone += alone * r["calls_per_step"]
    total_flops += r["flops"] * r["calls_per_step"]
    print(json.dumps({
        "phase": r["phase"], "lhs": r["lhs"], "rhs": r["rhs"], "dims": d, "dtypes": r["dtypes"],
        "epilogue": r["epilogue"], "calls_per_step": r["calls_per_step"],
        "ms_in_step": in_step and round(in_step, 4), "ms_alone": round(alone, 4),
        "tflops_in_step": in_step and round(r["flops"] / in_step / 1e9, 1),
        "tflops_alone": round(r["flops"] / alone / 1e9, 1),
        "source": r.get("source", "")[-60:]}), flush=True)
    del lhs, rhs
  print(json.dumps({"signatures": len(rows), "ms_alone_per_step": round(total_alone, 2),
                    "tflop_per_step": round(total_flops / 1e12, 2),
                    "tflops_alone": round(total_flops / total_alone / 1e9, 1)}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
