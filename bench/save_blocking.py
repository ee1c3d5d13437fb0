"""How long an asynchronous Orbax save holds the training loop, by handler setting.

  python3 bench/save_blocking.py [--gb 3] [--leaves 500] [--repeats 3]

Builds a pytree of `--leaves` float32 arrays (`--gb` GB in all) on the default device and saves
it with an async CheckpointManager (as `flanjax.checkpoints.TrainCheckpointManager` does) under
each setting of `PyTreeCheckpointHandler(enable_pinned_host_transfer=...)`: None (Orbax's
default: pinned host buffers on GPUs) and False (pageable copies). Prints one JSON line per save:
`block_s` (until `save` returns: what the loop waits) and `total_s` (until the write ends).
No TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


def tree_of(gb: float, leaves: int):
  n = int(gb * 2**30 / 4 / leaves)
  make = jax.jit(lambda i: jnp.full((n,), i, jnp.float32))
  return {f"w{i:04d}": make(i) for i in range(leaves)}


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--gb", type=float, default=3.0)
  p.add_argument("--leaves", type=int, default=500)
  p.add_argument("--repeats", type=int, default=3)
  args = p.parse_args()
  tree = tree_of(args.gb, args.leaves)
  jax.block_until_ready(tree)
  for pinned in (None, False):
    root = tempfile.mkdtemp(prefix="save_blocking_")
    handler = ocp.PyTreeCheckpointHandler(enable_pinned_host_transfer=pinned)
    mngr = ocp.CheckpointManager(
        root, options=ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=True),
        item_handlers={"params": handler})
    for r in range(args.repeats):
      t0 = time.perf_counter()
      mngr.save(r + 1, args=ocp.args.Composite(params=ocp.args.PyTreeSave(tree)), force=True)
      block = time.perf_counter() - t0
      mngr.wait_until_finished()
      total = time.perf_counter() - t0
      print(json.dumps({"pinned": pinned, "gb": args.gb, "leaves": args.leaves, "save": r + 1,
                        "block_s": round(block, 3), "total_s": round(total, 3),
                        "device": jax.devices()[0].device_kind}), flush=True)
    mngr.close()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  main()
