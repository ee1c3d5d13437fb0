"""Per-GEMM throughput of a profiled train step: which matmuls fall short of the ceiling.

  python3 bench/gemm_efficiency.py TRACE_DIR HLO.txt [--steps 3] [--ceiling 790] [--json F]

`bench/train_throughput.py --profile-dir DIR --dump-hlo DIR2` writes both. Each cuBLAS /
cuBLASLt custom call in the optimized HLO gives its operand shapes and dot dimension numbers,
hence its FLOPs (2 x lhs elements x rhs free elements); the trace gives its kernel time (all
kernels the call launched, split-K reductions included). Calls of one signature (phase, shapes,
dimension numbers, output dtype, epilogue) are summed. Prints ms/step, TFLOP/s and the time lost
against `--ceiling` TFLOP/s per signature; `--json` writes the signatures for
`bench/probe_gemm.py`, which times each shape alone.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import re
import sys

from profile_attribution import _hlo_op, hlo_lines, hlo_metadata, phase_of  # bench/: its folder
from profile_summary import find_trace, gpu_kernel_events

_GEMM_TARGET = re.compile(r'custom_call_target="(__cublas\$[\w$]+)"')
_SHAPE = re.compile(r"\b(bf16|f16|f32|f64|f8e4m3fn|f8e5m2|s8|s32)\[([\d,]*)\]")


def _dims(s: str) -> tuple[int, ...]:
  return tuple(int(x) for x in s.split(",") if x)


def _call_args(line: str, opener: str) -> str:
  start = line.index(opener) + len(opener)
  depth, end = 1, start
  while depth and end < len(line):
    depth += {"(": 1, ")": -1}.get(line[end], 0)
    end += 1
  return line[start:end - 1]


def _operands(line: str, opener: str, lines: dict[str, str]) -> list[tuple[str, tuple[int, ...]]]:
  """Operand (dtype, dims) of `opener(...)`: printed inline, or else the operands' own lines."""
  args = _call_args(line, opener)
  typed = [(t, _dims(d)) for t, d in _SHAPE.findall(args)]
  if len(typed) >= 2:
    return typed
  out = []
  for name in re.findall(r"%?([\w.\-]+)", args):
    m = _SHAPE.match(lines.get(name, "").lstrip("("))
    if m:
      out.append((m.group(1), _dims(m.group(2))))
  return out


def _dim_numbers(line: str) -> dict[str, list[int]]:
  out = {}
  for key, short in (("lhs_contracting_dimensions", "lhs_contracting_dims"),
                     ("rhs_contracting_dimensions", "rhs_contracting_dims"),
                     ("lhs_batch_dimensions", "lhs_batch_dims"),
                     ("rhs_batch_dimensions", "rhs_batch_dims")):
    m = re.search(rf'"{key}":\[([^\]]*)\]', line) or re.search(rf"{short}=\{{([^}}]*)\}}", line)
    out[key] = [int(x.strip('" ')) for x in m.group(1).split(",") if x.strip('" ')] if m else []
  return out


def parse_gemm(line: str, lines: dict[str, str] | None = None,
               bodies: dict[str, list[str]] | None = None) -> dict | None:
  """The signature and FLOPs of one GEMM instruction of HLO text: a cuBLAS custom call, a `dot`,
  or a fusion whose called computation holds one (None: not a GEMM)."""
  lines = lines or {}
  target = _GEMM_TARGET.search(line)
  if target and "custom-call(" in line:
    opener, kind = "custom-call(", target.group(1)
  elif re.search(r"\bdot\(", line):
    opener, kind = "dot(", "dot"
  else:
    called = re.search(r"calls=%?([\w.\-]+)", line)
    for inner in (bodies or {}).get(called.group(1) if called else "", []):
      g = parse_gemm(inner, lines, None)
      if g is not None:
        g["target"] = "fusion/" + g["target"]
        return g
    return None
  ops = _operands(line, opener, lines)
  if len(ops) < 2:
    return None
  (lt, lhs), (rt, rhs) = ops[0], ops[1]
  head = line[:line.index(opener)]
  out_shapes = _SHAPE.findall(head)
  out_t, out = (out_shapes[0][0], _dims(out_shapes[0][1])) if out_shapes else ("?", ())
  dn = _dim_numbers(line)
  rhs_free = [d for i, d in enumerate(rhs)
              if i not in dn["rhs_contracting_dimensions"] and i not in dn["rhs_batch_dimensions"]]
  flops = 2 * math.prod(lhs) * math.prod(rhs_free)
  epi = re.search(r'"epilogue":"(\w+)"', line)
  return {"target": kind, "lhs": list(lhs), "rhs": list(rhs), "out": list(out),
          "dtypes": [lt, rt, out_t], "dims": dn, "epilogue": epi.group(1) if epi else "",
          "flops": flops}


def computation_bodies(hlo_text: str, named: bool = False) -> dict[str, list]:
  """Computation name -> its instruction lines (`named`: (instruction name, line) pairs)."""
  out, cur = {}, None
  for line in hlo_text.splitlines():
    m = re.match(r"^\s*(?:ENTRY\s+)?%?([\w.\-]+)\s*\(", line)  # "name (params) -> ... {"
    if m and line.rstrip().endswith("{"):
      cur = out.setdefault(m.group(1), [])
    elif line.strip() == "}":
      cur = None
    elif cur is not None:
      body = re.match(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$", line)
      if body:
        cur.append((body.group(1), body.group(2)) if named else body.group(2))
  return out


def _signature_row(groups: dict, g: dict, op: str, meta: dict, **fields) -> dict:
  """The row of `g`'s signature (phase, shapes, dimension numbers, dtypes, epilogue) in
  `groups`, made on its first call (`fields`: the caller's counters) and counted once more."""
  phase = phase_of(meta.get(op, {}).get("op_name", ""))
  key = (phase, json.dumps([g["lhs"], g["rhs"], g["dims"], g["dtypes"], g["epilogue"]]))
  row = groups.setdefault(key, dict(g, phase=phase, calls=0, example=op,
                                    source=meta.get(op, {}).get("op_name", "")[-100:], **fields))
  row["calls"] += 1
  return row


def analyse(trace_path: str, hlo_path: str, steps: int = 3, ceiling: float = 790.0,
            top: int = 40, out=sys.stdout) -> list[dict]:
  with open(hlo_path) as f:
    hlo_text = f.read()
  meta = hlo_metadata(hlo_text)
  sanitized = {re.sub(r"[.\-]", "_", k): k for k in meta}
  lines = hlo_lines(hlo_text, whole=True)
  bodies = computation_bodies(hlo_text)
  per_op = collections.Counter()
  kernels = collections.defaultdict(set)
  for e in gpu_kernel_events(trace_path):
    op = _hlo_op(e.get("args", {}), e["name"], meta, sanitized)
    per_op[op] += float(e.get("dur", 0))
    kernels[op].add(e["name"][:60])
  groups: dict[tuple, dict] = {}
  unparsed = 0.0
  unparsed_ops = collections.Counter()
  for op, us in per_op.items():
    g = parse_gemm(lines.get(op, ""), lines, bodies)
    if g is None:
      if re.search(r"gemm|nvjet|cutlass|xmma", " ".join(kernels[op]), re.I):
        unparsed += us
        unparsed_ops[op] += us
      continue
    row = _signature_row(groups, g, op, meta, us=0.0, kernels=set())
    row["us"] += us
    row["kernels"] |= kernels[op]
  rows = sorted(groups.values(), key=lambda r: -r["us"])
  for op, us in unparsed_ops.most_common(5):  # what the parser missed, to fix it
    print(f"not parsed: {us / 1e3 / steps:.3f} ms/step {op} {sorted(kernels[op])[:1]} "
          f"{lines.get(op, '(no HLO line)')[:400]}", file=out)
  tot_us = sum(r["us"] for r in rows) or 1e-9
  tot_flops = sum(r["flops"] * r["calls"] * steps for r in rows)
  ms = lambda us: us / 1e3 / steps  # noqa: E731
  lost_total = 0.0
  print(f"GEMMs: {ms(tot_us):.2f} ms/step, {tot_flops / steps / 1e12:.2f} TFLOP/step, "
        f"{tot_flops / (tot_us * 1e-6) / 1e12:.0f} TFLOP/s; matmul-like kernels not parsed: "
        f"{ms(unparsed):.2f} ms/step", file=out)
  print("   ms/step calls TFLOP/s lost@ceil phase    lhs x rhs (contract, batch) -> out dtype "
        "epilogue | kernel", file=out)
  for r in rows:
    t = r["us"] * 1e-6 / (r["calls"] * steps)  # seconds per call (each HLO op runs once a step)
    r["tflops_s"] = r["flops"] / t / 1e12
    r["ms_per_step"] = ms(r["us"])
    r["ms_per_call"] = t * 1e3
    r["calls_per_step"] = r["calls"]
    lost = max(0.0, r["us"] - r["flops"] * r["calls"] * steps / (ceiling * 1e12) * 1e6)
    r["lost_ms_per_step"] = ms(lost)
    lost_total += lost
  for r in rows[:top]:
    d = r["dims"]
    print(f"  {r['ms_per_step']:7.2f} {r['calls_per_step']:5.0f} {r['tflops_s']:7.0f} "
          f"{r['lost_ms_per_step']:8.2f} {r['phase'][:8]:8s} {r['lhs']}x{r['rhs']} "
          f"(c{d['lhs_contracting_dimensions']}{d['rhs_contracting_dimensions']} "
          f"b{d['lhs_batch_dimensions']}) -> {r['out']} {'/'.join(r['dtypes'])} {r['epilogue']} | "
          f"{sorted(r['kernels'])[0] if r['kernels'] else ''}", file=out)
  print(f"time lost against {ceiling:.0f} TFLOP/s: {ms(lost_total):.2f} ms/step", file=out)
  for r in rows:
    r["kernels"] = sorted(r["kernels"])
  return rows


def static_signatures(hlo_path: str, out=sys.stdout) -> list[dict]:
  """Every GEMM of the HLO by signature, with its count per step (no trace: the kernels of this
  JAX's GPU traces carry no HLO op name); `probe_gemm.py` times each signature alone. A GEMM is
  a cuBLAS custom call, a fusion around a dot, or a bare dot outside fusions; a GEMM inside a
  while loop's body (scanned layers) counts once, not once per iteration."""
  with open(hlo_path) as f:
    hlo_text = f.read()
  meta = hlo_metadata(hlo_text)
  lines = hlo_lines(hlo_text, whole=True)
  named = computation_bodies(hlo_text, named=True)
  bodies = {comp: [line for _, line in instrs] for comp, instrs in named.items()}
  fused = {m for b in bodies.values() for line in b if re.search(r"\bfusion\(", line)
           for m in re.findall(r"calls=%?([\w.\-]+)", line)}
  groups: dict[tuple, dict] = {}
  for comp, instrs in named.items():
    if comp in fused:
      continue  # counted through the fusion that calls it
    for op, line in instrs:
      g = parse_gemm(line, lines, bodies)
      if g is not None:
        _signature_row(groups, g, op, meta)
  rows = sorted(groups.values(), key=lambda r: -r["flops"] * r["calls"])
  total = sum(r["flops"] * r["calls"] for r in rows)
  print(f"{sum(r['calls'] for r in rows)} GEMMs, {total / 1e12:.2f} TFLOP/step "
        f"({total / 790e12 * 1e3:.1f} ms at 790 TFLOP/s)", file=out)
  for r in rows:
    r["calls_per_step"] = r["calls"]
    d = r["dims"]
    print(f"  {r['calls']:4d} x {r['flops'] / 1e9:8.1f} GFLOP {r['phase'][:8]:8s} "
          f"{r['lhs']}x{r['rhs']} (c{d['lhs_contracting_dimensions']}"
          f"{d['rhs_contracting_dimensions']} b{d['lhs_batch_dimensions']}) -> {r['out']} "
          f"{'/'.join(r['dtypes'])} {r['epilogue']} {r['target']} | {r['source'][-60:]}", file=out)
  return rows


def main(argv=None) -> int:
  p = argparse.ArgumentParser()
  p.add_argument("trace", help="the profile's folder, or 'none': list the HLO's GEMMs only")
  p.add_argument("hlo")
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--ceiling", type=float, default=790.0, help="TFLOP/s counted as reachable")
  p.add_argument("--top", type=int, default=40)
  p.add_argument("--json", default=None, help="write the signatures here")
  args = p.parse_args(argv)
  if args.trace == "none":
    rows = static_signatures(args.hlo)
  else:
    rows = analyse(find_trace(args.trace), args.hlo, args.steps, args.ceiling, args.top)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
