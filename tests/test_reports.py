"""Reports: metrics.json / metrics.md / PNGs / predictions.jsonl, written all-or-nothing."""
import json
import os

import pytest

from flanjax import reports

TASK_METRICS = {
    "anli_r1": {"accuracy": 30.0, "rank_accuracy": 40.0},
    "rte": {"accuracy": 50.0, "rank_accuracy": 60.0},
    "wmt16_ende": {"bleu": 12.5},
}
TASK_INFO = {
    "anli_r1": {"cluster": "nli", "metric": "accuracy", "num_examples": 3},
    "rte": {"cluster": "nli", "metric": "accuracy", "num_examples": 3},
    "wmt16_ende": {"cluster": "translation", "metric": "bleu", "num_examples": 2},
}
ROWS = [{"task": "rte", "input": "premise ... ?", "target": "yes", "prediction": "no",
         "score": -1.5}]


def _results():
  res = reports.task_results(TASK_METRICS, TASK_INFO)
  res.update(checkpoint="/ckpt", step=7, split="validation", num_shots=0)
  return res


def test_task_results_cluster_means():
  res = reports.task_results(TASK_METRICS, TASK_INFO)
  assert res["clusters"]["nli"]["score"] == pytest.approx(50.0)  # mean of rank accuracies
  assert res["clusters"]["nli"]["tasks"] == ["anli_r1", "rte"]
  assert res["clusters"]["translation"]["score"] == pytest.approx(12.5)
  assert res["tasks"]["rte"]["primary"] == ["rank_accuracy", 60.0]


def test_task_results_use_a_tasks_own_headline():
  info = {"nq": {"cluster": "cbqa", "metric": "squad", "headline": "em"},
          "squad": {"cluster": "rc", "metric": "squad", "headline": None}}
  res = reports.task_results({"nq": {"f1": 50.0, "em": 30.0}, "squad": {"f1": 80.0, "em": 70.0}},
                             info)
  assert res["tasks"]["nq"]["primary"] == ["em", 30.0]
  assert res["clusters"]["cbqa"]["score"] == pytest.approx(30.0)
  assert res["tasks"]["squad"]["primary"] == ["f1", 80.0]  # the kind's headline
  assert "| nq | cbqa | - | em 30.00 |" in reports.markdown_table(res)
  assert "All metrics on a 0-100 scale. Cluster" in reports.markdown_table(res)


def test_edit_distances_are_named_as_word_counts_in_the_table():
  info = {"fix_punct": {"cluster": "misc", "metric": "rouge_edit", "headline": None}}
  res = reports.task_results({"fix_punct": {"rougeLsum": 90.0, "rouge1": 91.0, "rouge2": 80.0,
                                            "mean_edit": 1.5, "median_edit": 1.0}}, info)
  assert res["tasks"]["fix_punct"]["primary"] == ["rougeLsum", 90.0]
  assert res["clusters"]["misc"]["score"] == pytest.approx(90.0)
  assert ("All metrics on a 0-100 scale but mean_edit and median_edit (words, lower is better)"
          in reports.markdown_table(res))


def test_write_eval_reports(tmp_path):
  out = reports.write_eval_reports(str(tmp_path), _results(), ROWS)
  names = sorted(os.listdir(tmp_path))
  assert names == sorted(["metrics.json", "metrics.md", "predictions.jsonl", "clusters.png",
                          "cluster_nli.png", "cluster_translation.png"])
  m = reports.read_metrics(str(tmp_path))
  assert m["complete"] is True and m["scale"] == "0-100" and m["step"] == 7
  assert m["tasks"]["wmt16_ende"]["metrics"]["bleu"] == 12.5
  md = open(out["markdown"]).read()
  assert "| nli | 50.00 | 2 |" in md
  assert "| rte | nli | 3 | rank_accuracy 60.00 |" in md
  with open(out["clusters_png"], "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert reports.read_predictions(out["predictions"]) == ROWS


def test_failed_write_publishes_nothing_and_keeps_old_reports(tmp_path):
  reports.write_eval_reports(str(tmp_path), _results(), ROWS)
  before = {n: open(tmp_path / n, "rb").read() for n in os.listdir(tmp_path)}
  bad_rows = ROWS + [{"task": "rte", "input": "x", "prediction": "y"}]  # target missing
  changed = _results()
  changed["step"] = 8
  with pytest.raises(ValueError, match=r"Prediction row 1 lacks \['target'\]"):
    reports.write_eval_reports(str(tmp_path), changed, bad_rows)
  after = {n: open(tmp_path / n, "rb").read() for n in os.listdir(tmp_path)}
  assert after == before  # no staging folder left, nothing replaced
  assert reports.read_metrics(str(tmp_path))["step"] == 7


def test_read_metrics_refuses_partial(tmp_path):
  with pytest.raises(FileNotFoundError, match="has not finished"):
    reports.read_metrics(str(tmp_path))
  (tmp_path / "metrics.json").write_text(json.dumps({"tasks": {}}))
  with pytest.raises(ValueError, match="not marked complete"):
    reports.read_metrics(str(tmp_path))


def test_read_predictions_target_missing(tmp_path):
  p = tmp_path / "predictions.jsonl"
  p.write_text('{"input": "a", "target": "b", "prediction": "b"}\n{"input": "a"}\n')
  with pytest.raises(ValueError, match=r"predictions.jsonl:2: row has no 'target'"):
    reports.read_predictions(str(p))
  p.write_text("not json\n")
  with pytest.raises(ValueError, match="not valid JSON"):
    reports.read_predictions(str(p))


def test_nan_is_written_as_null(tmp_path):
  res = reports.task_results({"t": {"bleu": float("nan")}},
                             {"t": {"cluster": "c", "metric": "bleu"}})
  reports.write_eval_reports(str(tmp_path), res)
  m = json.load(open(tmp_path / "metrics.json"))
  assert m["tasks"]["t"]["metrics"]["bleu"] is None


def test_atomic_write(tmp_path):
  path = tmp_path / "sub" / "f.txt"
  reports.atomic_write(str(path), "hello")
  assert path.read_text() == "hello"
  assert os.listdir(tmp_path / "sub") == ["f.txt"]


def test_comparison(tmp_path):
  before = {"clusters": {"nli": {"score": 40.0}, "qa": {"score": 10.0}}}
  after = {"clusters": {"nli": {"score": 55.0}, "qa": {"score": 5.0}}}
  rows = reports.comparison(before, after)
  assert rows["nli"]["gain"] == pytest.approx(15.0)
  assert rows["qa"]["gain"] == pytest.approx(-5.0)
  out = reports.write_comparison(str(tmp_path), rows, extra={"steps": 3})
  md = open(out["markdown"]).read()
  assert "| nli | 40.00 | 55.00 | +15.00 |" in md
  assert "| **mean** | 25.00 | 30.00 | +5.00 |" in md
  payload = json.load(open(out["json"]))
  assert payload["complete"] and payload["steps"] == 3
  assert os.path.getsize(out["png"]) > 1000


def test_settings_comparison():
  same = {"split": "validation", "templates": "each", "max_examples": 4}
  check = reports.settings_comparison(same, dict(same))
  assert check == {"eval_settings": same, "settings_differ": {}, "settings_unrecorded": [],
                   "comparable": True}
  check = reports.settings_comparison(same, dict(same, max_examples=6, templates="sampled"))
  assert check["comparable"] is False and check["eval_settings"] == {"split": "validation"}
  assert check["settings_differ"] == {"max_examples": {"before": 4, "after": 6},
                                      "templates": {"before": "each", "after": "sampled"}}
  check = reports.settings_comparison({"split": "validation"}, same,
                                      names=["split", "templates", "dtype"])
  assert check["comparable"] is None and check["settings_unrecorded"] == ["templates", "dtype"]
  assert check["eval_settings"] == {"split": "validation"}


def test_comparison_markdown_states_the_settings():
  settings = {"split": "validation", "num_shots": 0, "max_examples": None,
              "task_feature_lengths": {"inputs": 64, "targets": 8}}
  rows = {c: {"before": 10.0, "after": 20.0, "gain": 10.0,
              **reports.settings_comparison(settings, settings)} for c in ("nli", "qa")}
  md = reports.comparison_markdown(rows, "t")
  assert ("Before and after of every cluster were evaluated with: split `validation`, "
          "num_shots `0`, max_examples `null`, task_feature_lengths "
          '`{"inputs": 64, "targets": 8}`.') in md
  assert "| **mean** | 10.00 | 20.00 | +10.00 |" in md and "zero-shot gain" in md
  rows["qa"] = {"before": 10.0, "after": 30.0, "gain": None,
                **reports.settings_comparison(settings, dict(settings, max_examples=6))}
  md = reports.comparison_markdown(rows, "t")
  assert "| qa | 10.00 | 30.00 | not comparable |" in md and "**mean**" not in md
  assert "- nli: split `validation`, num_shots `0`" in md
  assert "- qa: split `validation`" in md and "**not compared**" in md
  assert "max_examples `null` before, `6` after" in md
  shots = dict(settings, num_shots=2)
  md = reports.comparison_markdown(
      {"nli": {"before": 1.0, "after": 2.0, "gain": 1.0,
               **reports.settings_comparison(shots, shots)}}, "t")
  assert "| held-out cluster | before | after | gain |" in md and "num_shots `2`" in md
  # Rows without settings (an older caller): the table alone, as before.
  assert "settings" not in reports.comparison_markdown(
      {"nli": {"before": 1.0, "after": 2.0, "gain": 1.0}}, "t").split("|---|")[-1]


def test_rewrite_removes_stale_cluster_charts(tmp_path):
  reports.write_eval_reports(str(tmp_path), _results(), ROWS)
  only_nli = reports.task_results({"rte": TASK_METRICS["rte"]}, TASK_INFO)
  reports.write_eval_reports(str(tmp_path), only_nli)  # no predictions, one cluster
  assert sorted(os.listdir(tmp_path)) == ["cluster_nli.png", "clusters.png", "metrics.json",
                                          "metrics.md"]
  assert set(reports.read_metrics(str(tmp_path))["clusters"]) == {"nli"}


def test_crash_while_publishing_never_leaves_old_complete_metrics(tmp_path, monkeypatch):
  reports.write_eval_reports(str(tmp_path), _results(), ROWS)
  real_replace, moved = os.replace, []

  def flaky_replace(src, dst):
    if moved:  # the first new file moves in, then the "crash"
      raise OSError("disk full")
    moved.append(dst)
    real_replace(src, dst)

  monkeypatch.setattr(reports.os, "replace", flaky_replace)
  changed = _results()
  changed["step"] = 8
  with pytest.raises(OSError, match="disk full"):
    reports.write_eval_reports(str(tmp_path), changed, ROWS)
  assert moved and not os.path.exists(tmp_path / "metrics.json")
  with pytest.raises(FileNotFoundError, match="has not finished"):
    reports.read_metrics(str(tmp_path))


def test_format_score():
  assert reports.format_score(None) == "-" and reports.format_score(float("nan")) == "-"
  assert reports.format_score(3) == "3.00" and reports.format_score(1.234, signed=True) == "+1.23"


def test_rewrite_keeps_files_flanjax_did_not_write(tmp_path):
  """Only the files the previous evaluation listed in metrics.json are replaced or removed."""
  reports.write_eval_reports(str(tmp_path), _results(), ROWS)
  assert reports.read_metrics(str(tmp_path))["report_files"] == [
      "cluster_nli.png", "cluster_translation.png", "clusters.png", "metrics.md",
      "predictions.jsonl"]
  (tmp_path / "cluster_myplot.png").write_bytes(b"my own chart")
  (tmp_path / "notes.txt").write_text("mine")
  only_nli = reports.task_results({"rte": TASK_METRICS["rte"]}, TASK_INFO)
  reports.write_eval_reports(str(tmp_path), only_nli)
  assert sorted(os.listdir(tmp_path)) == ["cluster_myplot.png", "cluster_nli.png", "clusters.png",
                                          "metrics.json", "metrics.md", "notes.txt"]
  assert (tmp_path / "cluster_myplot.png").read_bytes() == b"my own chart"
  assert reports.read_metrics(str(tmp_path))["report_files"] == [
      "cluster_nli.png", "clusters.png", "metrics.md"]


def test_rewrite_over_a_metrics_json_without_report_files(tmp_path):
  """An older flanjax's metrics.json names its charts through its clusters; others are kept."""
  reports.write_eval_reports(str(tmp_path), _results(), ROWS)
  old = json.load(open(tmp_path / "metrics.json"))
  del old["report_files"]
  (tmp_path / "metrics.json").write_text(json.dumps(old))
  (tmp_path / "cluster_myplot.png").write_bytes(b"mine")
  assert reports.previous_eval_files(str(tmp_path)) == [
      "cluster_nli.png", "cluster_translation.png", "clusters.png", "metrics.md",
      "predictions.jsonl"]
  reports.write_eval_reports(str(tmp_path), reports.task_results({"rte": TASK_METRICS["rte"]},
                                                                 TASK_INFO))
  assert not (tmp_path / "cluster_translation.png").exists()
  assert (tmp_path / "cluster_myplot.png").read_bytes() == b"mine"


def test_a_hand_edited_manifest_never_removes_other_files(tmp_path):
  reports.write_eval_reports(str(tmp_path), _results(), ROWS)
  m = json.load(open(tmp_path / "metrics.json"))
  m["report_files"] += ["notes.txt", "../x.png", "cluster_myplot.png/.."]
  (tmp_path / "metrics.json").write_text(json.dumps(m))
  (tmp_path / "notes.txt").write_text("mine")
  reports.write_eval_reports(str(tmp_path), _results(), ROWS)
  assert (tmp_path / "notes.txt").read_text() == "mine"


def test_existing_eval_reports(tmp_path):
  assert reports.existing_eval_reports(str(tmp_path / "missing")) == []
  (tmp_path / "cluster_nli.png").write_bytes(b"mine")
  (tmp_path / "other.png").write_bytes(b"mine")
  assert reports.existing_eval_reports(str(tmp_path)) == []
  assert reports.existing_eval_reports(str(tmp_path), ["nli"]) == ["cluster_nli.png"]
  reports.write_eval_reports(str(tmp_path / "ev"), _results(), ROWS)
  assert reports.existing_eval_reports(str(tmp_path / "ev")) == [
      "cluster_nli.png", "cluster_translation.png", "clusters.png", "metrics.json", "metrics.md",
      "predictions.jsonl"]


def test_check_writable_dir(tmp_path, monkeypatch):
  from flanjax.errors import FlanjaxError
  deep = tmp_path / "a" / "b"
  assert reports.check_writable_dir(str(deep), "--output_dir") == str(deep)
  assert os.listdir(tmp_path) == []  # no folder is made for the check, no probe is left
  (tmp_path / "f").write_text("x")
  with pytest.raises(FlanjaxError, match=r"--output_dir .*/f is a file, not a folder"):
    reports.check_writable_dir(str(tmp_path / "f"), "--output_dir")
  with pytest.raises(FlanjaxError, match=r"/f/sub: .*/f is a file, not a folder"):
    reports.check_writable_dir(str(tmp_path / "f" / "sub"), "--output_dir")

  def read_only(*args, **kwargs):
    raise OSError(30, "Read-only file system")
  monkeypatch.setattr(reports.tempfile, "mkstemp", read_only)
  (tmp_path / "ro").mkdir()
  with pytest.raises(FlanjaxError, match=r"^--output_dir .*/ro is not writable \(Read-only file "
                                         r"system\); choose a folder you can write to, on a "
                                         r"disk with free space\.$"):
    reports.check_writable_dir(str(tmp_path / "ro"), "--output_dir")
  with pytest.raises(FlanjaxError, match=r"^--output_dir .*/ro/new/sub is not writable "
                                         r"\(Read-only file system in .*/ro\); choose"):
    reports.check_writable_dir(str(tmp_path / "ro" / "new" / "sub"), "--output_dir")
  assert os.listdir(tmp_path / "ro") == []
