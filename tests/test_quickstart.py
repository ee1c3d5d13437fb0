"""`flanjax quickstart` end to end through the console script: outputs and run-twice determinism."""
import json
import os
import pathlib
import subprocess
import sys

import pytest
from conftest import CACHE_ENV


def _quickstart(out_dir: pathlib.Path, cwd: pathlib.Path, stdout: list | None = None) -> dict:
  exe = pathlib.Path(sys.executable).parent / "flanjax"
  env = {**os.environ, **CACHE_ENV, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run(
      [str(exe), "quickstart", "--output_dir", str(out_dir), "--steps", "4",
       "--eval_examples", "2", "--no_progress"],
      cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
  assert "Traceback" not in proc.stderr
  assert "| offline_nli | nli | held-out |" in proc.stdout  # the printed per-task table
  if stdout is not None:
    stdout.append(proc.stdout)
  return json.loads((out_dir / "quickstart.json").read_text())


@pytest.mark.slow
def test_quickstart_writes_everything_and_is_deterministic(tmp_path):
  a = _quickstart(tmp_path / "a", tmp_path)
  for rel in ("quickstart.md", "model/flanjax_model.json", "model/metrics.jsonl",
              "eval/metrics.json", "eval/metrics.md", "eval/clusters.png",
              "eval/predictions.jsonl"):
    assert (tmp_path / "a" / rel).exists(), rel
  assert any((tmp_path / "a" / "model" / "tensorboard").rglob("events.out.tfevents*"))
  assert sorted(p.name for p in (tmp_path / "a" / "model").iterdir() if p.name.isdigit())
  splits = {r["split"] for r in a["tasks"]}
  assert splits == {"held-in", "held-out"}
  assert len(a["losses"]) >= 2 and all(loss > 0 for _, loss in a["losses"])

  b = _quickstart(tmp_path / "b", tmp_path)
  assert a["losses"] == b["losses"]  # same seed, same losses, bit for bit


def test_quickstart_rejects_unknown_cluster(capsys):
  from flanjax import cli
  assert cli.main(["quickstart", "--heldout_cluster", "nlii", "--output_dir", "/tmp/x"]) == 2
  err = capsys.readouterr().err
  assert "nlii" in err and "nli" in err and "Traceback" not in err


@pytest.mark.parametrize("flag", ["--eval_examples", "--steps", "--batch_size"])
def test_quickstart_bad_counts_name_the_flag(flag, capsys):
  from flanjax import quickstart
  with pytest.raises(SystemExit) as e:
    quickstart.main([flag, "0", "--output_dir", "/tmp/x"])
  assert e.value.code == 2
  assert capsys.readouterr().err == (f"flanjax quickstart: error: argument {flag}: must be an "
                                     "integer >= 1, got 0. Run 'flanjax quickstart --help' for "
                                     "the flags.\n")


def test_quickstart_unwritable_output_dir_fails_before_training(tmp_path, monkeypatch):
  from flanjax import offline, reports
  from flanjax.errors import FlanjaxError

  def read_only(*args, **kwargs):
    raise OSError(30, "Read-only file system")

  def no_prepare(*args, **kwargs):
    raise AssertionError("data was prepared before the output folder was checked")
  monkeypatch.setattr(reports.tempfile, "mkstemp", read_only)
  monkeypatch.setattr(offline, "prepare", no_prepare)
  with pytest.raises(FlanjaxError, match=r"--output_dir .*/qs is not writable"):
    quickstart_run(str(tmp_path / "qs"))


def quickstart_run(output_dir):
  from flanjax import quickstart
  return quickstart.run(output_dir, steps=1, eval_examples=1, progress=False)


@pytest.mark.slow
def test_quickstart_rerun_keeps_user_files_in_eval(tmp_path):
  """A re-run into the same --output_dir resumes model/ and replaces eval/'s reports, keeping
  files the user put there."""
  summary = _quickstart(tmp_path / "a", tmp_path)
  (tmp_path / "a" / "eval" / "cluster_myplot.png").write_bytes(b"mine")
  first = json.loads((tmp_path / "a" / "eval" / "metrics.json").read_text())
  out = []
  resummary = _quickstart(tmp_path / "a", tmp_path, out)
  again = json.loads((tmp_path / "a" / "eval" / "metrics.json").read_text())
  assert again["step"] == first["step"] == 4
  # Nothing was trained again: it says so, and the report keeps the first run's training time.
  assert f"evaluating the trained model in {tmp_path / 'a' / 'model'} again" in out[0]
  assert "training a tiny T5" not in out[0]
  assert resummary["train_seconds"] == summary["train_seconds"] > 0
  assert resummary["final_train_metrics"] == summary["final_train_metrics"]
  assert summary["final_train_metrics"]["loss"] > 0 and resummary["trained_earlier"]
  md = (tmp_path / "a" / "quickstart.md").read_text()
  assert f"trained by an earlier run in {summary['train_seconds']} s, everything" in md
  assert (tmp_path / "a" / "eval" / "cluster_myplot.png").read_bytes() == b"mine"


@pytest.mark.slow
def test_quickstart_does_not_report_an_interrupted_training(tmp_path, monkeypatch, capsys):
  """Training stopped before --steps (SIGTERM, stop_after_steps) is not evaluated nor reported
  as the run of --steps steps; the rerun resumes it."""
  from flanjax import quickstart, train
  real_train = train.train
  monkeypatch.setattr(train, "train", lambda **kw: real_train(**kw, stop_after_steps=2))
  out = tmp_path / "q"
  assert quickstart.run(str(out), steps=4, eval_examples=2, progress=False) is None
  assert ("training stopped at step 2 of 4; nothing was evaluated. Rerun the same command to "
          "resume.") in capsys.readouterr().out
  assert not (out / "quickstart.md").exists() and not (out / "eval").exists()
