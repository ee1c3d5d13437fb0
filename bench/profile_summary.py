"""Summarises a jax.profiler Perfetto trace: GPU kernel time by kernel and by category.

  python3 bench/profile_summary.py TRACE_DIR_OR_perfetto_trace.json.gz [--steps 3] [--top 40]

`bench/train_throughput.py --profile-dir DIR` writes the trace (3 steps). Categories are
matched on kernel names: matmuls (cuBLAS / nvjet / cutlass / triton gemm), attention (cuDNN),
reductions and the rest (XLA fusions: elementwise, layer norm, softmax, optimizer ...).
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys

CATEGORIES = (
    ("attention", re.compile(r"cudnn|flash|fmha|sdpa|attn", re.I)),
    ("matmul", re.compile(r"gemm|nvjet|cutlass|cublas|sm90_xmma|xmma|matmul|dot", re.I)),
    ("copy/transpose", re.compile(r"copy|transpose|memcpy|memset|dynamic.update|dynamic.slice",
                                  re.I)),
    ("reduce", re.compile(r"reduce|reduction", re.I)),
    ("fusion", re.compile(r"fusion|loop|input|wrapped", re.I)),
)


def find_trace(path: str) -> str:
  if os.path.isfile(path):
    return path
  hits = sorted(glob.glob(os.path.join(path, "**", "*perfetto_trace.json.gz"), recursive=True))
  if not hits:
    raise SystemExit(f"no perfetto_trace.json.gz under {path}")
  return hits[-1]


def categorize(name: str) -> str:
  for cat, rx in CATEGORIES:
    if rx.search(name):
      return cat
  return "other"


def gpu_kernel_events(trace_path: str, out=sys.stdout, show_threads: bool = False) -> list[dict]:
  """The GPU kernel events ("X" events on the GPU's stream lines) of a Perfetto trace. The XLA
  op / module lines duplicate the kernels and are left out. `show_threads`: print the GPU lines'
  names to `out` (where a missing kernel line is reported too)."""
  with gzip.open(trace_path, "rt") as f:
    data = json.load(f)
  events = data["traceEvents"] if isinstance(data, dict) else data
  pnames = {e["pid"]: e.get("args", {}).get("name", "") for e in events
            if e.get("ph") == "M" and e.get("name") == "process_name"}
  gpu_pids = {pid for pid, n in pnames.items() if "gpu" in n.lower() or "/device:" in n.lower()}
  tnames = {(e["pid"], e["tid"]): e.get("args", {}).get("name", "") for e in events
            if e.get("ph") == "M" and e.get("name") == "thread_name"}
  gpu = [e for e in events if e.get("ph") == "X" and e.get("pid") in gpu_pids]
  if show_threads:
    print("GPU threads:", sorted({tnames.get((e["pid"], e["tid"]), "") for e in gpu}), file=out)
  kernels = []
  for e in gpu:
    tname = tnames.get((e["pid"], e["tid"]), "")
    if "stream" in tname.lower() or not tname:
      kernels.append(e)
  if not kernels:
    print("no GPU kernel events found; process names:", sorted(set(pnames.values())), file=out)
  return kernels


def summarize(trace_path: str, steps: int = 3, top: int = 40, out=sys.stdout):
  by_name = collections.Counter()
  count = collections.Counter()
  lo, hi = float("inf"), 0.0
  for e in gpu_kernel_events(trace_path, out=out):
    dur = float(e.get("dur", 0))
    by_name[e["name"]] += dur
    count[e["name"]] += 1
    lo, hi = min(lo, float(e["ts"])), max(hi, float(e["ts"]) + dur)
  total = sum(by_name.values())
  if not total:
    return {}
  cats = collections.Counter()
  for n, d in by_name.items():
    cats[categorize(n)] += d
  print(f"trace {trace_path}\nGPU busy {total / 1e3 / steps:.2f} ms/step, span "
        f"{(hi - lo) / 1e3 / steps:.2f} ms/step over {steps} steps", file=out)
  for c, d in cats.most_common():
    print(f"  {c:16s} {d / 1e3 / steps:8.2f} ms/step {100 * d / total:5.1f}%", file=out)
  print(f"top {top} kernels (ms/step, calls/step, name):", file=out)
  for n, d in by_name.most_common(top):
    print(f"  {d / 1e3 / steps:8.3f} {count[n] / steps:6.0f}  {n[:140]}", file=out)
  return {"busy_ms": total / 1e3 / steps, "categories": {c: d / 1e3 / steps for c, d in cats.items()}}


def main(argv=None) -> int:
  p = argparse.ArgumentParser()
  p.add_argument("path")
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--top", type=int, default=40)
  args = p.parse_args(argv)
  summarize(find_trace(args.path), args.steps, args.top)
  return 0


if __name__ == "__main__":
  sys.exit(main())
