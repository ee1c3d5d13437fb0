"""Metric logging: TensorBoard (tensorboardX, TF-free), a JSONL file, and console progress: a
tqdm bar on a terminal, one line per logged step elsewhere (cluster logs, `progress=False`).

Only process 0 writes. Files in the model dir:
  metrics.jsonl           one JSON object per logged step: {"step": s, "split": "train", ...}
  tensorboard/<split>/    TensorBoard event files (scalar per metric)
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import jax

from flanjax.files import atomic_write


def _jsonable(v):
  try:
    f = float(v)
  except (TypeError, ValueError):
    return v
  return f if math.isfinite(f) else str(f)


def _drop_rows_after(path: str, step: int):
  """Rewrites `path` (atomically) without the rows of steps > `step`: after a kill and a resume
  from `step`, those steps are trained and logged again."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = f.readlines()
  keep = []
  for line in lines:
    try:
      row_step = int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):  # a torn last line (killed mid-write): drop it
      continue
    if row_step <= step:
      keep.append(line if line.endswith("\n") else line + "\n")
  if keep == lines:
    return
  atomic_write(path, "".join(keep))


def progress_line(step: int, total_steps: int, metrics: dict, first: bool = False) -> str:
  """One log line for a logged step: loss, throughput, MFU, time per step and ETA; `first`: the
  first line of a run, whose timing window holds the compile (shown as such, no rate or ETA)."""
  parts = [f"step {step}/{total_steps}"]
  if "loss" in metrics:
    parts.append(f"loss {float(metrics['loss']):.4f}")
  sps = float(metrics.get("steps_per_sec") or 0.0)
  if first:
    if sps > 0:
      parts.append(f"{1 / sps:.1f} s a step with the compile")
    return ", ".join(parts)
  if metrics.get("tokens_per_sec"):
    parts.append(f"{float(metrics['tokens_per_sec']):,.0f} tok/s")
  if metrics.get("mfu"):
    parts.append(f"MFU {100 * float(metrics['mfu']):.1f} %")
  if sps > 0:
    parts.append(f"{1000 / sps:.1f} ms/step")
    left = max(total_steps - step, 0) / sps
    if left:
      h, rem = divmod(int(round(left)), 3600)
      parts.append(f"ETA {h}:{rem // 60:02d}:{rem % 60:02d}")
  return ", ".join(parts)


class MetricsWriter:
  """Writes metrics to TensorBoard + metrics.jsonl, and reports progress on stderr: a tqdm bar
  when `progress` and stderr is a terminal, else one line per logged step."""

  def __init__(self, model_dir: str | None, *, total_steps: int, initial_step: int = 0,
               tensorboard: bool = True, progress: bool = True):
    self.enabled = jax.process_index() == 0
    self.model_dir = model_dir
    self._tb: dict[str, object] = {}
    self._tensorboard = tensorboard and model_dir is not None
    self._jsonl = None
    self._bar = None
    self._total_steps = total_steps
    self._initial_step = initial_step
    self._lines = 0  # progress lines printed
    if not self.enabled:
      return
    if model_dir is not None:
      os.makedirs(model_dir, exist_ok=True)
      path = os.path.join(model_dir, "metrics.jsonl")
      _drop_rows_after(path, initial_step)  # rows logged after the checkpoint we resume from
      self._jsonl = open(path, "a")
    if progress and sys.stderr.isatty():
      from tqdm import tqdm
      self._bar = tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True,
                       file=sys.stderr, smoothing=0.1, mininterval=1.0)

  def _writer(self, split: str):
    if split not in self._tb:
      try:
        from tensorboardX import SummaryWriter
      except ImportError:  # a bare accelerator image: keep the JSONL and the progress bar
        self.message("tensorboardX is not installed: TensorBoard logging is off "
                     "(pip install tensorboardX); metrics.jsonl is still written.")
        self._tensorboard = False
        return None
      # A resume from step s retrains steps > s: TensorBoard drops their earlier events.
      self._tb[split] = SummaryWriter(os.path.join(self.model_dir, "tensorboard", split),
                                      purge_step=self._initial_step + 1 if self._initial_step
                                      else None)
    return self._tb[split]

  def write(self, step: int, metrics: dict, split: str = "train"):
    """Logs `metrics` (name -> scalar) at `step`."""
    if not self.enabled:
      return
    row = {"step": int(step), "split": split, "time": time.time()}
    row.update({k: _jsonable(v) for k, v in metrics.items() if v is not None})
    if self._jsonl is not None:
      self._jsonl.write(json.dumps(row) + "\n")
      self._jsonl.flush()
    w = self._writer(split) if self._tensorboard else None
    if w is not None:
      for k, v in metrics.items():
        if isinstance(v, (int, float)) or hasattr(v, "dtype"):
          w.add_scalar(k, float(v), int(step))
      w.flush()

  def progress(self, step: int, metrics: dict):
    """Advances the progress bar to `step` showing loss, tokens/s and MFU (ETA comes from tqdm);
    without a bar, prints `progress_line`."""
    if not self.enabled:
      return
    if self._bar is None:
      if metrics:
        print(progress_line(step, self._total_steps, metrics, first=not self._lines),
              file=sys.stderr, flush=True)
        self._lines += 1
      return
    post = {}
    if "loss" in metrics:
      post["loss"] = f"{float(metrics['loss']):.4f}"
    if metrics.get("tokens_per_sec"):
      post["tok/s"] = f"{float(metrics['tokens_per_sec']):.3g}"
    if metrics.get("mfu"):
      post["mfu"] = f"{100 * float(metrics['mfu']):.1f}%"
    self._bar.set_postfix(post, refresh=False)
    self._bar.update(int(step) - self._bar.n)

  def message(self, text: str):
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.write(text, file=sys.stderr)
    else:
      print(text, file=sys.stderr, flush=True)

  def close(self):
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.close()
      self._bar = None
    for w in self._tb.values():
      w.close()
    self._tb = {}
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None
