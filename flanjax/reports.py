"""Evaluation reports: metrics.json, a Markdown table, PNG bar charts, predictions.jsonl.

Every report is rendered into a staging folder first and then moved into place with `os.replace`,
`metrics.json` last: a `metrics.json` with `"complete": true` means every other file of the same
run is there. A failed run leaves the previous reports untouched. Plain Python (matplotlib's Agg
canvas, no pyplot state): no TensorFlow.
"""
from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from flanjax import metrics as metrics_lib
from flanjax.files import atomic_write, check_writable_dir, iter_jsonl  # noqa: F401  (its API)

FORMAT_VERSION = 1
METRICS_JSON = "metrics.json"
METRICS_MD = "metrics.md"
PREDICTIONS_JSONL = "predictions.jsonl"
CLUSTERS_PNG = "clusters.png"
COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"
PREDICTION_FIELDS = ("task", "input", "target", "prediction", "score")


def _json_default(x: Any) -> Any:
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, bytes):
    return x.decode("utf-8", errors="replace")
  if isinstance(x, tuple):
    return list(x)
  raise TypeError(f"Cannot write {type(x).__name__} value {x!r} to JSON.")


def _finite(x: Any) -> Any:
  """Replaces NaN/inf (invalid JSON) with None, recursively."""
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {k: _finite(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_finite(v) for v in x]
  return x


def _remove(path: str) -> None:
  with contextlib.suppress(FileNotFoundError):
    os.remove(path)


class ReportWriter:
  """Stages report files and publishes them together (`metrics.json`-like marker last).

  with ReportWriter(output_dir) as w:
    w.write_text("metrics.md", ...)
    w.write_json("metrics.json", ..., last=True)
  On an exception inside the block nothing is published and the staging folder is removed.
  On success the old `last` files are removed first, then the `stale` files (names of files the
  previous report wrote, e.g. read from its manifest) that this report does not rewrite, then
  the new files move in. Nothing else in `output_dir` is touched.
  """

  def __init__(self, output_dir: str, stale: Iterable[str] = ()):
    self.output_dir = output_dir
    self.stale = tuple(stale)
    self._staging = None
    self._order: list[str] = []
    self._last: list[str] = []

  def __enter__(self) -> "ReportWriter":
    os.makedirs(self.output_dir, exist_ok=True)
    self._staging = tempfile.mkdtemp(dir=self.output_dir, prefix=".reports-staging-")
    return self

  def path(self, name: str) -> str:
    if os.path.dirname(name) or name in ("", ".", ".."):
      raise ValueError(f"Report file name {name!r} must be a plain file name.")
    return os.path.join(self._staging, name)

  def _add(self, name: str, last: bool) -> None:
    for lst in (self._order, self._last):
      if name in lst:
        lst.remove(name)
    (self._last if last else self._order).append(name)

  def write_text(self, name: str, text: str, *, last: bool = False) -> str:
    with open(self.path(name), "w", encoding="utf-8") as f:
      f.write(text)
    self._add(name, last)
    return os.path.join(self.output_dir, name)

  def write_json(self, name: str, obj: Any, *, last: bool = False) -> str:
    text = json.dumps(_finite(obj), indent=2, sort_keys=True, default=_json_default,
                      allow_nan=False)
    return self.write_text(name, text + "\n", last=last)

  def write_jsonl(self, name: str, rows: Iterable[Mapping[str, Any]]) -> str:
    with open(self.path(name), "w", encoding="utf-8") as f:
      for row in rows:
        f.write(json.dumps(_finite(dict(row)), default=_json_default, ensure_ascii=False,
                           allow_nan=False) + "\n")
    self._add(name, False)
    return os.path.join(self.output_dir, name)

  def add_file(self, name: str) -> str:
    """Registers a file the caller wrote at `self.path(name)` (e.g. a PNG)."""
    if not os.path.exists(self.path(name)):
      raise FileNotFoundError(f"Report file {name!r} was not written to the staging folder.")
    self._add(name, False)
    return os.path.join(self.output_dir, name)

  def __exit__(self, exc_type, exc, tb) -> None:
    try:
      if exc_type is None:
        names = self._order + self._last
        for name in names:
          with open(os.path.join(self._staging, name), "rb") as fh:
            os.fsync(fh.fileno())
        # Retire the previous report first: its completion markers (the `last` files, e.g.
        # metrics.json), so a crash below never leaves an old complete marker beside new
        # files; then its `stale` files this report does not rewrite.
        for name in self._last:
          _remove(os.path.join(self.output_dir, name))
        fresh = set(names)
        for name in self.stale:
          if name not in fresh and os.path.basename(name) == name:
            _remove(os.path.join(self.output_dir, name))
        for name in names:
          os.replace(os.path.join(self._staging, name), os.path.join(self.output_dir, name))
    finally:
      shutil.rmtree(self._staging, ignore_errors=True)


def task_results(task_metrics: Mapping[str, Mapping[str, float]],
                 task_info: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
  """Builds the `tasks` and `clusters` sections of metrics.json.

  `task_info[task]` holds `cluster`, `metric` (kind) and optionally `headline` (the task's own
  headline metric, `TaskInfo.headline`), `num_examples` and `templates` ({template: metrics}
  when each template was evaluated; the task's metrics are then their mean, and
  `best_template` is [template, headline name, value]).
  """
  tasks, headlines = {}, {}
  for name, m in sorted(task_metrics.items()):
    info = task_info.get(name, {})
    kind = info.get("metric")
    headlines[name] = info.get("headline") or None
    primary = metrics_lib.primary_metric(dict(m), kind, headlines[name]) if m else None
    tasks[name] = {"cluster": info.get("cluster", "unknown"), "metric_kind": kind,
                   "metrics": {k: float(v) for k, v in sorted(m.items())},
                   "primary": list(primary) if primary else None,
                   "num_examples": info.get("num_examples")}
    if info.get("templates"):  # evaluated once per template: the metrics are their mean
      per = {t: {k: float(v) for k, v in sorted(tm.items())}
             for t, tm in info["templates"].items()}
      tasks[name]["templates"] = per
      if primary:
        best = max(per, key=lambda t: per[t].get(primary[0], float("-inf")))
        tasks[name]["best_template"] = [best, primary[0], per[best].get(primary[0])]
  means = metrics_lib.cluster_means(
      {t: v["metrics"] for t, v in tasks.items() if v["primary"]},
      {t: v["cluster"] for t, v in tasks.items()},
      {t: v["metric_kind"] for t, v in tasks.items() if v["metric_kind"]},
      {t: h for t, h in headlines.items() if h})
  clusters = {c: {"score": e["score"], "num_tasks": e["num_tasks"], "tasks": sorted(e["tasks"])}
              for c, e in sorted(means.items())}
  return {"tasks": tasks, "clusters": clusters}


def _fmt(x: Any) -> str:
  if x is None:
    return "-"
  if isinstance(x, float):
    return f"{x:.2f}"
  return str(x)


def format_score(x: Any, signed: bool = False) -> str:
  """A score with 2 decimals (`+` sign when `signed`), or "-" when there is none (None/NaN)."""
  if x is None or (isinstance(x, float) and not math.isfinite(x)):
    return "-"
  return f"{float(x):+.2f}" if signed else f"{float(x):.2f}"


def markdown_table(results: Mapping[str, Any]) -> str:
  """A Markdown report: a per-cluster table and a per-task table with all metrics."""
  lines = []
  title = results.get("title") or "Evaluation"
  lines.append(f"# {title}\n")
  meta = [f"{k}: `{results[k]}`" for k in ("checkpoint", "step", "split", "num_shots",
                                           "templates") if results.get(k) is not None]
  if meta:
    lines.append(", ".join(meta) + "\n")
  tasks = results.get("tasks", {})
  names = sorted({k for t in tasks.values() for k in t["metrics"]})
  words = [n for n in names if n.endswith("_edit")]
  scale = (f"All metrics on a 0-100 scale but {' and '.join(words)} (words, lower is better)"
           if words else "All metrics on a 0-100 scale")
  lines.append(f"{scale}. Cluster score: mean over its tasks of each task's headline metric.\n")
  lines.append("| cluster | score | tasks |")
  lines.append("|---|---:|---:|")
  for c, e in sorted(results.get("clusters", {}).items()):
    lines.append(f"| {c} | {_fmt(e['score'])} | {e['num_tasks']} |")
  lines.append("")
  lines.append("| task | cluster | examples | headline | " + " | ".join(names) + " |")
  lines.append("|---|---|---:|---|" + "---:|" * len(names))
  for t, e in sorted(tasks.items(), key=lambda kv: (kv[1]["cluster"], kv[0])):
    head = f"{e['primary'][0]} {_fmt(e['primary'][1])}" if e.get("primary") else "-"
    cells = [_fmt(e["metrics"].get(n)) for n in names]
    lines.append(f"| {t} | {e['cluster']} | {_fmt(e.get('num_examples'))} | {head} | "
                 + " | ".join(cells) + " |")
  per = {t: e for t, e in tasks.items() if e.get("templates")}
  if per:  # --templates each: each template's headline, the task's being their mean
    lines.append("")
    lines.append("Each template evaluated on its own (the task's metrics above are the mean over "
                 "its templates; tN is the task's template N: `flanjax preview TASK --template N` "
                 "shows it; the examples column counts one template's):\n")
    cols = sorted({int(i) for e in per.values() for i in e["templates"]})
    lines.append("| task | headline | " + " | ".join(f"t{i}" for i in cols) + " | best |")
    lines.append("|---|---|" + "---:|" * (len(cols) + 1))
    for t, e in sorted(per.items()):
      name = e["primary"][0] if e.get("primary") else None
      cells = [_fmt(e["templates"].get(str(i), {}).get(name)) if name else "-" for i in cols]
      best = e.get("best_template")
      lines.append(f"| {t} | {name or '-'} | " + " | ".join(cells) +
                   (f" | t{best[0]} {_fmt(best[2])} |" if best else " | - |"))
  return "\n".join(lines) + "\n"


def _bar_chart(path: str, labels: Sequence[str], series: Mapping[str, Sequence[float]],
               title: str, ylabel: str) -> None:
  """Writes a (grouped) bar chart PNG with matplotlib's Agg canvas."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  width = max(4.0, 0.9 * len(labels) * max(1, len(series)) + 1.5)
  fig = Figure(figsize=(min(width, 24.0), 4.0))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  x = np.arange(len(labels))
  bar_w = 0.8 / max(1, len(series))
  for i, (name, values) in enumerate(series.items()):
    vals = [np.nan if v is None else v for v in values]
    bars = ax.bar(x + (i - (len(series) - 1) / 2) * bar_w, vals, bar_w, label=name)
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
  ax.set_xticks(x)
  ax.set_xticklabels(labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(
      labels) > 4 else "center", fontsize=8)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  if len(series) > 1:
    ax.legend(fontsize=8)
  ax.axhline(0.0, color="black", linewidth=0.5)
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def cluster_png_name(cluster: str) -> str:
  safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in cluster)
  return f"cluster_{safe}.png"


# The files `write_eval_reports` may write besides metrics.json: only these are ever replaced or
# removed, and only when the previous metrics.json lists them (its "report_files").
EVAL_REPORT_PATTERNS = (METRICS_MD, PREDICTIONS_JSONL, CLUSTERS_PNG, "cluster_*.png")


def _is_eval_report_name(name: str) -> bool:
  return (isinstance(name, str) and os.path.basename(name) == name
          and any(fnmatch.fnmatchcase(name, p) for p in EVAL_REPORT_PATTERNS))


def previous_eval_files(output_dir: str) -> list[str]:
  """Files (besides metrics.json) that the evaluation whose metrics.json is in `output_dir` wrote.

  Read from its "report_files" list; a metrics.json of an older flanjax without that list
  names its files through its clusters. [] when there is no readable metrics.json.
  """
  try:
    with open(os.path.join(output_dir, METRICS_JSON), encoding="utf-8") as f:
      old = json.load(f)
  except (OSError, ValueError):
    return []
  if not isinstance(old, dict):
    return []
  files = old.get("report_files")
  if files is None:
    clusters = old.get("clusters") if isinstance(old.get("clusters"), dict) else {}
    files = [METRICS_MD, PREDICTIONS_JSONL] + (
        [CLUSTERS_PNG] + [cluster_png_name(c) for c in clusters] if clusters else [])
  if not isinstance(files, list):
    return []
  return sorted({n for n in files if _is_eval_report_name(n)})


def existing_eval_reports(output_dir: str, clusters: Iterable[str] = ()) -> list[str]:
  """Names of files in `output_dir` that writing an evaluation's reports there would replace.

  metrics.json, metrics.md, predictions.jsonl, clusters.png, the files the previous evaluation
  wrote (see `previous_eval_files`) and cluster_<c>.png of `clusters` (the new evaluation's).
  """
  if not os.path.isdir(output_dir):
    return []
  names = {METRICS_JSON, METRICS_MD, PREDICTIONS_JSONL, CLUSTERS_PNG}
  names.update(previous_eval_files(output_dir))
  names.update(cluster_png_name(c) for c in clusters)
  return sorted(n for n in names if os.path.lexists(os.path.join(output_dir, n)))


def write_eval_reports(output_dir: str, results: Mapping[str, Any],
                       predictions: Iterable[Mapping[str, Any]] | None = None) -> dict[str, str]:
  """Writes metrics.json, metrics.md, clusters.png, cluster_<c>.png and predictions.jsonl.

  `results` is what `task_results` returns plus run metadata (checkpoint, step, split, ...).
  Returns {file kind: path}. All files appear together, metrics.json last (see module doc).
  metrics.json lists the other files in "report_files"; a rewrite replaces those of the previous
  evaluation (removing the ones it does not write again) and leaves every other file alone.
  """
  results = dict(results)
  results.update(format_version=FORMAT_VERSION, scale="0-100", complete=True)
  out = {}
  with ReportWriter(output_dir, stale=previous_eval_files(output_dir)) as w:
    files = []
    if predictions is not None:
      out["predictions"] = w.write_jsonl(PREDICTIONS_JSONL, _check_rows(predictions))
      files.append(PREDICTIONS_JSONL)
    out["markdown"] = w.write_text(METRICS_MD, markdown_table(results))
    files.append(METRICS_MD)
    clusters = results.get("clusters", {})
    if clusters:
      names = sorted(clusters)
      _bar_chart(w.path(CLUSTERS_PNG), names, {"score": [clusters[c]["score"] for c in names]},
                 results.get("title") or "Score per cluster", "score (0-100)")
      out["clusters_png"] = w.add_file(CLUSTERS_PNG)
      files.append(CLUSTERS_PNG)
      tasks = results.get("tasks", {})
      for c in names:
        ts = [t for t in clusters[c]["tasks"] if tasks.get(t, {}).get("primary")]
        png = cluster_png_name(c)
        _bar_chart(w.path(png), ts, {"score": [tasks[t]["primary"][1] for t in ts]},
                   f"{c}: headline metric per task", "score (0-100)")
        out[f"cluster_png/{c}"] = w.add_file(png)
        files.append(png)
    results["report_files"] = sorted(files)
    out["metrics"] = w.write_json(METRICS_JSON, results, last=True)
  return out


def _check_rows(rows: Iterable[Mapping[str, Any]]) -> Iterable[dict[str, Any]]:
  for i, row in enumerate(rows):
    missing = [f for f in ("input", "target") if f not in row]
    if missing:
      raise ValueError(f"Prediction row {i} lacks {missing}: every row needs 'input' and "
                       f"'target' (and 'prediction' and/or 'score').")
    if "prediction" not in row and "score" not in row:
      raise ValueError(f"Prediction row {i} has neither 'prediction' nor 'score'.")
    yield dict(row)


def read_predictions(path: str) -> list[dict[str, Any]]:
  """Reads a predictions.jsonl, checking every row has an input, a target and an output."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"No predictions file at {path}; run `flanjax eval` first.")
  rows = []
  for n, row in iter_jsonl(path):
    if "target" not in row:
      raise ValueError(f"{path}:{n}: row has no 'target' (fields: {sorted(row)}); "
                       "predictions.jsonl rows need input, target, prediction/score.")
    rows.append(row)
  return rows


def read_metrics(output_dir_or_file: str) -> dict[str, Any]:
  """Reads a complete metrics.json (from a folder or a path); refuses partial results."""
  path = output_dir_or_file
  if os.path.isdir(path):
    path = os.path.join(path, METRICS_JSON)
  if not os.path.exists(path):
    raise FileNotFoundError(f"No {METRICS_JSON} at {path}: that evaluation has not finished "
                            "(or never ran).")
  with open(path, encoding="utf-8") as f:
    results = json.load(f)
  if not results.get("complete"):
    raise ValueError(f"{path} is not marked complete; re-run that evaluation.")
  return results


def comparison(before: Mapping[str, Any], after: Mapping[str, Any],
               clusters: Sequence[str] | None = None) -> dict[str, Any]:
  """Per cluster: the score before and after instruction tuning, and the gain (after - before)."""
  names = sorted(clusters or set(before.get("clusters", {})) | set(after.get("clusters", {})))
  rows = {}
  for c in names:
    b = before.get("clusters", {}).get(c, {}).get("score")
    a = after.get("clusters", {}).get(c, {}).get("score")
    rows[c] = {"before": b, "after": a,
               "gain": None if a is None or b is None else float(a) - float(b)}
  return rows


def settings_comparison(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                        names: Sequence[str] | None = None) -> dict[str, Any]:
  """How the evaluation settings of the two sides of a comparison compare.

  Returns {"eval_settings": {name: value} of the settings both sides record alike,
  "settings_differ": {name: {"before", "after"}}, "settings_unrecorded": [names a side does not
  record], "comparable": False where a setting differs, None (unknown) where one is unrecorded,
  else True}. `names`: the settings to compare (default: those either side records).
  """
  before, after = dict(before or {}), dict(after or {})
  names = list(names) if names is not None else list(dict.fromkeys([*before, *after]))
  both = [k for k in names if k in before and k in after]
  differ = {k: {"before": before[k], "after": after[k]} for k in both if before[k] != after[k]}
  unrecorded = [k for k in names if k not in both]
  return {"eval_settings": {k: before[k] for k in both if k not in differ},
          "settings_differ": differ, "settings_unrecorded": unrecorded,
          "comparable": False if differ else (None if unrecorded else True)}


def _setting_text(value: Any) -> str:
  return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _settings_text(settings: Mapping[str, Any]) -> str:
  return ", ".join(f"{k} `{_setting_text(v)}`" for k, v in settings.items()) or "-"


def _settings_lines(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
  """The Markdown lines on the evaluation settings of `rows` (`settings_comparison` fields)."""
  known = {c: r for c, r in sorted(rows.items()) if "eval_settings" in r}
  if not known:
    return []
  lines = [""]
  alike = [r for r in known.values() if r.get("comparable") is True]
  shared = {json.dumps(r["eval_settings"], sort_keys=True) for r in known.values()}
  if len(alike) == len(rows) and len(shared) == 1:
    what = "Before and after" if len(rows) == 1 else "Before and after of every cluster"
    lines.append(f"{what} were evaluated with: "
                 f"{_settings_text(next(iter(alike))['eval_settings'])}.")
    return lines + [""]
  lines.append("Evaluation settings (what both sides were evaluated with):\n")
  for c, r in known.items():
    line = f"- {c}: {_settings_text(r['eval_settings'])}"
    differ = r.get("settings_differ") or {}
    if differ:
      line += ("; **not compared**, before and after were evaluated differently: " + "; ".join(
          f"{k} `{_setting_text(v['before'])}` before, `{_setting_text(v['after'])}` after"
          for k, v in differ.items()) + " (rerun `flanjax heldout` for this cluster: it "
          "re-evaluates the side whose settings differ from the current ones)")
    if r.get("settings_unrecorded"):
      line += ("; **not recorded** (assumed equal on both sides): "
               + ", ".join(r["settings_unrecorded"]))
    lines.append(line)
  return lines + [""]


def comparison_markdown(rows: Mapping[str, Mapping[str, Any]], title: str) -> str:
  """The comparison table; with `settings_comparison` fields in the rows, the settings both
  sides were evaluated with, and "not comparable" instead of a gain where they differ."""
  shots = {(r.get("eval_settings") or {}).get("num_shots") for r in rows.values()} - {None, 0}
  lines = [f"# {title}\n",
           "Held-out cluster score (0-100, mean over the cluster's tasks of the headline "
           "metric): the starting checkpoint (before) vs after instruction tuning without "
           "that cluster (after).\n",
           f"| held-out cluster | before | after | {'gain' if shots else 'zero-shot gain'} |",
           "|---|---:|---:|---:|"]
  for c, r in sorted(rows.items()):
    if r.get("comparable") is False:
      gain = "not comparable"
    else:
      gain = "-" if r["gain"] is None else f"{r['gain']:+.2f}"
    lines.append(f"| {c} | {_fmt(r['before'])} | {_fmt(r['after'])} | {gain} |")
  compared = [r for r in rows.values() if r["gain"] is not None]
  if len(compared) > 1:  # over the compared clusters: mean after - mean before = mean gain
    lines.append(f"| **mean** | {_fmt(np.mean([r['before'] for r in compared]))} | "
                 f"{_fmt(np.mean([r['after'] for r in compared]))} | "
                 f"{np.mean([r['gain'] for r in compared]):+.2f} |")
  lines += _settings_lines(rows)
  return "\n".join(lines).rstrip("\n") + "\n"


def write_comparison(output_dir: str, rows: Mapping[str, Mapping[str, Any]],
                     title: str = "Held-out cluster evaluation",
                     extra: Mapping[str, Any] | None = None) -> dict[str, str]:
  """Writes comparison.json (last), comparison.md and comparison.png (before/after per cluster)."""
  out = {}
  names = sorted(rows)
  with ReportWriter(output_dir) as w:
    out["markdown"] = w.write_text(COMPARISON_MD, comparison_markdown(rows, title))
    if names:
      _bar_chart(w.path(COMPARISON_PNG), names,
                 {"before": [rows[c]["before"] for c in names],
                  "after": [rows[c]["after"] for c in names]},
                 title, "held-out score (0-100)")
      out["png"] = w.add_file(COMPARISON_PNG)
    payload = {"format_version": FORMAT_VERSION, "scale": "0-100", "complete": True,
               "title": title, "clusters": dict(rows), **dict(extra or {})}
    out["json"] = w.write_json(COMPARISON_JSON, payload, last=True)
  return out
