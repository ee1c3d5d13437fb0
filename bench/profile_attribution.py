"""Attributes a profiled train step's GPU time to phases and source lines, through the HLO.

  python3 bench/profile_attribution.py TRACE_DIR HLO.txt [--steps 3] [--top 40]

`bench/train_throughput.py --profile-dir DIR --dump-hlo DIR2` writes both. Each GPU kernel's
HLO instruction (the trace's "XLA Ops" line, or a kernel event's `hlo_op` argument) is looked up
in the optimized HLO text; its `op_name` metadata says where it came from:
`transpose(jvp(...))` = backward pass, `jvp(...)` = forward pass, anything else = the optimizer,
metrics and glue of the step. Prints ms/step by (phase, category) and the top source lines.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import sys

from profile_summary import categorize, find_trace, gpu_kernel_events  # bench/: its folder

_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*[^\n]*?metadata=\{([^}]*)\}", re.M)
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\d+)')


def hlo_metadata(hlo_text: str) -> dict[str, dict[str, str]]:
  """HLO instruction name -> its metadata fields (op_name, source_file, source_line)."""
  out = {}
  for m in _INSTR.finditer(hlo_text):
    fields = {k: v.strip('"') for k, v in _FIELD.findall(m.group(2))}
    out[m.group(1)] = fields
  return out


def _hlo_op(args: dict, kernel: str, meta: dict, sanitized: dict) -> str:
  """The HLO instruction of a kernel event: its `hlo_op` argument, a name found in its other
  arguments, or the kernel's own name (XLA names a fusion's kernel after the fusion)."""
  for key in ("hlo_op", "tf_op", "long_name", "name"):
    v = args.get(key)
    if isinstance(v, str):
      v = v.split(":")[0].strip().lstrip("%")
      if v in meta:
        return v
  for v in args.values():
    if isinstance(v, str):
      for tok in re.findall(r"[\w.\-]+", v):
        if tok in meta:
          return tok
  if kernel in meta:
    return kernel
  return sanitized.get(re.sub(r"[.\-]", "_", kernel), kernel)


def hlo_lines(hlo_text: str, whole: bool = False) -> dict[str, str]:
  """HLO instruction name -> its line, up to the metadata (shapes, operands, fusion kind);
  `whole`: the whole line (the backend config after the metadata too)."""
  out = {}
  for line in hlo_text.splitlines():
    m = re.match(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$", line)
    if m:
      out[m.group(1)] = m.group(2) if whole else m.group(2).split(", metadata=")[0]
  return out


def phase_of(op_name: str) -> str:
  if "transpose(" in op_name:
    return "backward"
  if "jvp(" in op_name:
    return "forward"
  return "optimizer/other" if op_name else "unknown"


def attribute(trace_path: str, hlo_path: str, steps: int = 3, top: int = 40, out=sys.stdout):
  with open(hlo_path) as f:
    hlo_text = f.read()
  meta = hlo_metadata(hlo_text)
  sanitized = {re.sub(r"[.\-]", "_", k): k for k in meta}
  # Kernel events on stream lines; their HLO op from args (hlo_op) when present.
  per_op = collections.Counter()     # hlo op -> us
  calls = collections.Counter()
  kernel_of = {}
  sample_args = None
  for e in gpu_kernel_events(trace_path, out=out, show_threads=True):
    args = e.get("args", {})
    sample_args = sample_args or args
    op = _hlo_op(args, e["name"], meta, sanitized)
    per_op[op] += float(e.get("dur", 0))
    calls[op] += 1
    kernel_of.setdefault(op, e["name"])
  print("a kernel event's args:", json.dumps(sample_args)[:400], file=out)
  total = sum(per_op.values())
  by_phase = collections.Counter()
  by_phase_cat = collections.Counter()
  by_line = collections.Counter()
  unmatched = 0.0
  for op, us in per_op.items():
    m = meta.get(op, {})
    if not m:
      unmatched += us
    ph = phase_of(m.get("op_name", ""))
    cat = categorize(kernel_of[op])
    by_phase[ph] += us
    by_phase_cat[(ph, cat)] += us
    src = f"{m.get('source_file', '?').split('/')[-1]}:{m.get('source_line', '?')}"
    by_line[(ph, cat, src, m.get("op_name", op)[-90:])] += us
  ms = lambda us: us / 1e3 / steps  # noqa: E731
  print(f"GPU busy {ms(total):.2f} ms/step; kernels with no HLO metadata {ms(unmatched):.2f}",
        file=out)
  for ph, us in by_phase.most_common():
    print(f"{ph:16s} {ms(us):8.2f} ms/step", file=out)
    for (p, c), u in by_phase_cat.most_common():
      if p == ph:
        print(f"    {c:16s} {ms(u):8.2f}", file=out)
  lines = hlo_lines(hlo_text)
  print(f"top {top} HLO ops: ms/step, launches/step, op, kernel, instruction", file=out)
  for op, us in per_op.most_common(top):
    print(f"  {ms(us):7.3f} {calls[op] / steps:6.0f}  {op[:28]:28s} {kernel_of[op][:40]:40s} "
          f"{lines.get(op, '')[:160]}", file=out)
  print(f"top {top} (phase, category, source line, op_name tail): ms/step", file=out)
  for (ph, cat, src, name), us in by_line.most_common(top):
    print(f"  {ms(us):7.3f}  {ph[:8]:8s} {cat[:10]:10s} {src:28s} {name}", file=out)
  return {"busy_ms": ms(total), "phases": {p: ms(u) for p, u in by_phase.items()},
          "phase_category": {f"{p}/{c}": ms(u) for (p, c), u in by_phase_cat.items()}}


def main(argv=None) -> int:
  p = argparse.ArgumentParser()
  p.add_argument("trace")
  p.add_argument("hlo")
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--top", type=int, default=40)
  p.add_argument("--json", default=None, help="also write the summary here")
  args = p.parse_args(argv)
  res = attribute(find_trace(args.trace), args.hlo, args.steps, args.top)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(res, f)
  return 0


if __name__ == "__main__":
  sys.exit(main())
