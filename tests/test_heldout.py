"""`flanjax heldout`: cluster discovery, job emission, collection, and one tiny offline run."""
import json
import os
import re

import pytest

from flanjax import heldout, reports, train


@pytest.fixture(scope="module")
def mixtures():
  import flanjax.mixtures  # noqa: F401  (registers offline_* and flan2021_* mixtures)


def _fake_eval(folder, cluster, score, step=None, settings=None):
  """A stage's metrics.json; with `settings`, the `EVAL_SETTINGS` that `evaluate` records."""
  res = reports.task_results({f"t_{cluster}": {"accuracy": score}},
                             {f"t_{cluster}": {"cluster": cluster, "metric": "accuracy"}})
  res["step"] = step
  res.update(settings or {})
  reports.write_eval_reports(str(folder), res)


def test_available_clusters_and_errors(mixtures):
  clusters = heldout.available_clusters("offline")
  assert "nli" in clusters and "sentiment" in clusters
  assert heldout.mixture_names("offline", "nli") == ("offline_without_nli", "offline_heldout_nli")
  with pytest.raises(heldout.HeldoutError, match="No held-out cluster 'nil'.*Did you mean 'nli'"):
    heldout.check_cluster("offline", "nil")
  # A collection typo: the collections that have clusters, and the closest.
  with pytest.raises(heldout.HeldoutError, match=r"^--collection 'ofline' has no held-out "
                     r"mixtures registered .*collections: \[.*'offline'.*\]\. Did you mean "
                     r"'offline'\?$"):
    heldout.main(["--collection", "ofline", "--all", "--output_dir", "/nonexistent/x"])
  assert "flan2021" in heldout.available_collections()
  # --model_size sizes a random start: with --init_checkpoint it would be ignored.
  with pytest.raises(heldout.HeldoutError, match=r"^--model_size tiny sizes a random start, but "
                     r"--init_checkpoint /x/ckpt is the start \(its own size\): give one"):
    heldout.main(["--collection", "offline", "--cluster", "nli", "--init_checkpoint", "/x/ckpt",
                  "--model_size", "tiny", "--output_dir", "/nonexistent/x"])


def test_emit_jobs(mixtures, capsys):
  argv = ["--all", "--emit_jobs", "--collection", "offline", "--output_dir", "/tmp/x y",
          "--num_steps", "10"]
  assert heldout.main(argv) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  clusters = heldout.available_clusters("offline")
  assert len(lines) == len(clusters) + 1
  assert lines[0] == ("flanjax heldout --collection offline --output_dir '/tmp/x y' "
                      f"--num_steps 10 --cluster {clusters[0]}")
  assert lines[-1].endswith("--all --collect")


def test_collect_all(tmp_path):
  _fake_eval(tmp_path / "nli" / "before", "nli", 30.0)
  _fake_eval(tmp_path / "nli" / "after", "nli", 45.0, step=10)
  _fake_eval(tmp_path / "topic" / "before", "topic", 50.0)
  _fake_eval(tmp_path / "topic" / "after", "topic", 40.0, step=10)
  _fake_eval(tmp_path / "math" / "before", "math", 1.0)  # unfinished: no "after"
  out = heldout.collect_all(str(tmp_path), ["math", "nli", "topic"], "offline")
  assert out["unfinished"] == ["math"]
  assert out["clusters"]["nli"]["gain"] == pytest.approx(15.0)
  assert out["clusters"]["topic"]["gain"] == pytest.approx(-10.0)
  md = open(tmp_path / "comparison.md").read()
  assert "| nli | 30.00 | 45.00 | +15.00 |" in md and "| **mean** | 40.00 | 42.50 | +2.50 |" in md
  payload = json.load(open(tmp_path / "comparison.json"))
  assert payload["complete"] and payload["unfinished"] == ["math"]
  assert os.path.exists(tmp_path / "comparison.png")
  assert os.path.exists(tmp_path / "nli" / "comparison.md")


def test_collect_all_nothing_finished(tmp_path):
  with pytest.raises(heldout.HeldoutError, match="No finished cluster"):
    heldout.collect_all(str(tmp_path), ["nli"], "offline")


def test_flag_errors(mixtures):
  with pytest.raises(heldout.HeldoutError, match="go with --all"):
    heldout.main(["--cluster", "nli", "--emit_jobs", "--output_dir", "/tmp/x"])


@pytest.mark.slow
def test_heldout_offline_end_to_end(mixtures, tmp_path, capsys, monkeypatch, clean_gin):
  """Train a tiny T5 for 2 steps without nli, evaluate before/after, write every report."""
  out = tmp_path / "held"
  argv = ["--collection", "offline", "--cluster", "nli", "--model_size", "tiny",
          "--num_steps", "2", "--batch_size", "4", "--input_length", "64",
          "--target_length", "16", "--max_eval_examples", "4", "--eval_batch_size", "4",
          "--contamination_max_train", "50", "--output_dir", str(out),
          "--gin.train.label_smoothing=0.01"]
  assert heldout.main(argv) == 0
  # The model folder records the gin config its training used, as `flanjax train` does.
  operative = (out / "nli" / "model" / "config.gin").read_text()
  assert operative.startswith("# flanjax operative config: what `flanjax heldout` used")
  assert "train.label_smoothing = 0.01" in operative
  printed = capsys.readouterr().out
  assert "nli: before" in printed
  assert "nli: training on offline_without_nli: 2 steps, batch 4, lengths 64/16\n" in printed
  assert re.search(rf"nli: contamination check \(13-grams of the training inputs\): .*; "
                   rf"{out}/nli/contamination.json\n", printed)
  assert re.search(rf"nli: before \S+ after \S+ gain \S+; {out}/nli/comparison.md\n", printed)
  for stage in ("before", "after"):
    m = reports.read_metrics(str(out / "nli" / stage))
    assert set(m["clusters"]) == {"nli"}
    assert m["tasks"]["offline_nli"]["num_examples"] == 4
  assert reports.read_metrics(str(out / "nli" / "after"))["step"] == 2
  cmp_ = json.load(open(out / "nli" / "comparison.json"))["clusters"]["nli"]
  assert cmp_["gain"] == pytest.approx(cmp_["after"] - cmp_["before"])
  assert cmp_["comparable"] is True
  # Beam search's settings are not used by greedy decoding: None on both sides.
  assert cmp_["eval_settings"] == dict(heldout.EVAL_SETTINGS, max_examples=4, num_beams=None,
                                       alpha=None)
  cont = json.load(open(out / "nli" / "contamination.json"))
  assert cont["train_mixture"] == "offline_without_nli" and cont["n"] == 13
  # A rerun finds every stage done and changes nothing; it reads no data, so it needs none
  # (a finished cluster's results are collected after its datasets are gone).
  stamps = {p: os.path.getmtime(out / "nli" / p) for p in (
      "contamination.json", "before/metrics.json", "after/metrics.json")}
  import seqio

  from flanjax import registration

  def no_data(*a, **k):
    raise AssertionError("a finished cluster's rerun read data")
  with monkeypatch.context() as m:
    m.setattr(seqio.Task, "get_dataset", no_data)
    m.setattr(registration, "check_prepared", no_data)
    assert heldout.main(argv) == 0
  assert {p: os.path.getmtime(out / "nli" / p) for p in stamps} == stamps
  assert "nli: before" in capsys.readouterr().out
  # Another training setting: train's refusal, naming heldout's --output_dir (it has no
  # --model_dir).
  # With an evaluation setting changed too, it is refused before "before" is re-evaluated.
  other = [a if a != "4" or argv[i - 1] != "--batch_size" else "2" for i, a in enumerate(argv)]
  other = [a if a != "4" or other[i - 1] != "--max_eval_examples" else "3"
           for i, a in enumerate(other)]
  with pytest.raises(heldout.HeldoutError, match=r"other data settings: batch_size=2 "
                                                 r"\(checkpoint: 4\); use a new --output_dir"):
    heldout.main(other)
  assert {p: os.path.getmtime(out / "nli" / p) for p in stamps} == stamps


@pytest.fixture
def clean_gin():
  from flanjax.gin_config import gin
  gin.clear_config()
  yield
  gin.clear_config()


def test_gin_bindings_reach_train_and_evaluate(mixtures, tmp_path, monkeypatch, clean_gin):
  """`--gin.train.X` configures training; unset eval flags leave `evaluate.X` bindings in force."""
  from flanjax import evaluation
  calls = {}

  def fake_contamination(eval_mixture, train_mixture, split, **kw):
    calls["contamination"] = dict(kw, split=split)
    return {"n": 13, "warn": []}

  def fake_evaluate(checkpoint, tasks, **kw):
    calls.setdefault("evaluate", []).append(kw)
    _fake_eval(kw["output_dir"], "nli", 30.0)

  monkeypatch.setattr(evaluation, "run_contamination_check", fake_contamination)
  monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
  monkeypatch.setattr(heldout, "starting_checkpoint", lambda *a, **k: str(tmp_path / "start"))
  argv = ["--collection", "offline", "--cluster", "nli", "--output_dir", str(tmp_path / "o"),
          "--gin.train.num_steps=0", "--gin.evaluate.max_examples=3"]
  # train's own check rejects num_steps=0: proof that the gin binding reached train().
  with pytest.raises(heldout.HeldoutError, match=r"^train: num_steps=0 must be an integer >= 1\b"):
    heldout.main(argv)
  assert calls["contamination"]["max_eval_examples"] == 3
  assert calls["contamination"]["split"] == "validation"
  assert calls["evaluate"][0]["output_dir"].endswith("before")
  assert calls["evaluate"][0]["overwrite"] is True  # heldout owns <out>/<cluster>/before, after
  assert not {"split", "batch_size", "max_examples"} & set(calls["evaluate"][0])
  calls.clear()
  with pytest.raises(heldout.HeldoutError, match="num_steps=0"):
    heldout.main(argv[:-2] + ["--gin.train.num_steps=0", "--output_dir", str(tmp_path / "p"),
                              "--eval_batch_size", "4", "--max_eval_examples", "2"])
  assert calls["evaluate"][0]["batch_size"] == 4 and calls["evaluate"][0]["max_examples"] == 2
  assert calls["contamination"]["max_eval_examples"] == 2


def test_missing_score_prints_a_dash(mixtures, monkeypatch, capsys):
  monkeypatch.setattr(heldout, "run_cluster",
                      lambda c, **kw: {"before": None, "after": 45.0, "gain": None})
  assert heldout.main(["--collection", "offline", "--cluster", "nli", "--output_dir", "/tmp/x"]) == 0
  assert "nli: before - after 45.00 gain -" in capsys.readouterr().out


def test_unknown_module_is_one_line_error(mixtures):
  from flanjax.errors import FlanjaxError
  with pytest.raises(FlanjaxError, match="--module nope_mod_xyz: no module named 'nope_mod_xyz'"):
    heldout.main(["--cluster", "nli", "--output_dir", "/tmp/x", "--module", "nope_mod_xyz"])


@pytest.mark.parametrize("flag", ["--max_eval_examples", "--eval_batch_size", "--num_steps"])
def test_bad_counts_name_the_flag(flag, capsys):
  with pytest.raises(SystemExit):
    heldout.main(["--cluster", "nli", "--output_dir", "/tmp/x", flag, "0"])
  assert f"argument {flag}: must be an integer >= 1, got 0" in capsys.readouterr().err


def test_unwritable_output_dir_fails_before_any_stage(mixtures, tmp_path, monkeypatch):
  from flanjax.errors import FlanjaxError

  def read_only(*args, **kwargs):
    raise OSError(30, "Read-only file system")
  monkeypatch.setattr(reports.tempfile, "mkstemp", read_only)
  monkeypatch.setattr(heldout, "run_cluster", lambda *a, **k: pytest.fail("ran a stage"))
  with pytest.raises(FlanjaxError, match=r"--output_dir .*/held is not writable"):
    heldout.main(["--collection", "offline", "--cluster", "nli",
                  "--output_dir", str(tmp_path / "held")])


def test_init_checkpoint_that_is_a_file(tmp_path):
  from flanjax.errors import FlanjaxError
  (tmp_path / "model.bin").write_bytes(b"x")
  with pytest.raises(FlanjaxError, match=r"--init_checkpoint .*model.bin is a file, not a "
                                         r"directory"):
    heldout.starting_checkpoint(str(tmp_path), str(tmp_path / "model.bin"), "tiny", None)


def test_a_random_start_another_job_made_meanwhile_is_used(tmp_path, monkeypatch):
  """--emit_jobs' jobs start together: each writes its start aside and renames it into place;
  the job that loses the rename uses the winner's (it had failed: "already holds a checkpoint")."""
  from flanjax import checkpoints, vocab
  real_save = checkpoints.save_pretrained
  start = tmp_path / "start"

  def save_racing(path, *a, **k):  # another job finishes <out>/start while this one writes
    real_save(str(start), *a, **k)
    real_save(path, *a, **k)
  monkeypatch.setattr(checkpoints, "save_pretrained", save_racing)
  got = heldout.starting_checkpoint(str(tmp_path), None, "tiny", vocab.offline_vocabulary())
  assert got == str(start) and checkpoints.finalized_steps(start) == [0]
  assert sorted(os.listdir(tmp_path)) == ["start"]  # its own copy is gone


def test_task_comparison_per_task_of_the_cluster():
  before = reports.task_results(
      {"a": {"bleu": 10.0}, "b": {"bleu": 4.0}, "other": {"accuracy": 50.0}},
      {"a": {"cluster": "translation", "metric": "bleu"},
       "b": {"cluster": "translation", "metric": "bleu"},
       "other": {"cluster": "nli", "metric": "accuracy"}})
  after = reports.task_results({"a": {"bleu": 12.5}},
                               {"a": {"cluster": "translation", "metric": "bleu"}})
  rows = heldout.task_comparison(before, after, "translation")
  assert rows == {"a": {"metric": "bleu", "before": 10.0, "after": 12.5, "gain": 2.5},
                  "b": {"metric": "bleu", "before": 4.0, "after": None, "gain": None}}


def test_flan2021_translation_reports_each_direction(mixtures, tmp_path, monkeypatch, clean_gin):
  """Holding out flan2021 translation evaluates (and checks for contamination) the 16 direction
  tasks, one BLEU per direction, and the cluster's comparison lists each one before / after."""
  from flanjax import checkpoints, evaluation
  pairs = {"para_crawl_enes": "es", "wmt14_enfr": "fr",
           **{f"wmt16_translate_{x}en": x for x in ("cs", "de", "fi", "ro", "ru", "tr")}}
  directions = sorted(f"flan2021_{k}_{d}" for k, x in pairs.items()
                      for d in (f"en_to_{x}", f"{x}_to_en"))
  calls = {}

  def fake_contamination(eval_mixture, train_mixture, split, **kw):
    calls["contamination"] = (train_mixture, sorted(
        t.name for t in evaluation.resolve_tasks(eval_mixture, split)))
    return {"n": 13, "warn": []}

  def fake_evaluate(checkpoint, tasks, **kw):
    names = sorted(t.name for t in evaluation.resolve_tasks(tasks, "validation"))
    calls.setdefault("evaluate", []).append(names)
    base = 10.0 if kw["output_dir"].endswith("before") else 20.0
    res = reports.task_results({n: {"bleu": base + i} for i, n in enumerate(names)},
                               {n: {"cluster": "translation", "metric": "bleu"} for n in names})
    res["step"] = 5
    reports.write_eval_reports(kw["output_dir"], res)

  monkeypatch.setattr(evaluation, "run_contamination_check", fake_contamination)
  monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
  monkeypatch.setattr(heldout, "starting_checkpoint", lambda *a, **k: str(tmp_path / "start"))
  monkeypatch.setattr(heldout, "_train", lambda **kw: calls.setdefault("train", kw["mixture"]))
  from flanjax import registration  # every stage that reads data is faked: no data is needed
  monkeypatch.setattr(registration, "check_prepared", lambda requests: None)
  monkeypatch.setattr(checkpoints, "finalized_steps", lambda path, *a: [5])
  monkeypatch.setattr(train, "latest_meta", lambda model_dir: None)
  row = heldout.run_cluster("translation", output_dir=str(tmp_path / "o"), prefix="flan2021",
                            train_kwargs={"num_steps": 5})
  assert len(directions) == 16
  assert calls["contamination"] == ("flan2021_without_translation", directions)
  assert calls["evaluate"] == [directions, directions]  # before, after
  assert calls["train"] == "flan2021_without_translation"
  assert row["eval_mixture"] == "flan2021_heldout_translation"
  assert sorted(row["tasks"]) == directions
  assert all(r["metric"] == "bleu" and r["gain"] == pytest.approx(10.0)
             for r in row["tasks"].values())
  assert row["gain"] == pytest.approx(10.0)
  saved = json.load(open(tmp_path / "o" / "translation" / "comparison.json"))
  assert sorted(saved["clusters"]["translation"]["tasks"]) == directions
  after = reports.read_metrics(str(tmp_path / "o" / "translation" / "after"))
  assert after["clusters"]["translation"]["num_tasks"] == 16


def test_eval_settings_are_evaluates_arguments_with_its_defaults():
  import inspect

  from flanjax import evaluation
  params = inspect.signature(evaluation.evaluate).parameters
  assert {k: params[k].default for k in heldout.EVAL_SETTINGS} == heldout.EVAL_SETTINGS


def _fakes(monkeypatch, tmp_path):
  """Fake contamination check, evaluation (writing metrics.json as `evaluate` does, with
  max_examples examples per task) and training (to train.num_steps); returns the call log."""
  from flanjax import checkpoints, evaluation
  calls = {"contamination": [], "evaluate": [], "train": []}
  state = {"step": None}

  def fake_contamination(eval_mixture, train_mixture, split, **kw):
    calls["contamination"].append(kw)
    return {"n": 13, "warn": [], "train_mixture": train_mixture}

  def fake_evaluate(checkpoint, tasks, **kw):
    calls["evaluate"].append(os.path.basename(kw["output_dir"]))
    s = heldout.eval_settings(kw)  # what evaluate gets: kw, else gin's evaluate.X bindings
    n = s["max_examples"] or 10
    res = reports.task_results({"offline_nli": {"accuracy": 30.0 + n}},
                               {"offline_nli": {"cluster": "nli", "metric": "accuracy",
                                                "num_examples": n}})
    res.update(s, checkpoint=checkpoint,  # evaluate records every EVAL_SETTINGS
               step=state["step"] if kw["output_dir"].endswith("after") else 0)
    reports.write_eval_reports(kw["output_dir"], res)

  def fake_train(**kw):
    from flanjax.gin_config import gin
    calls["train"].append(kw)
    if state["step"] is None:
      state["start"] = kw["init_checkpoint"]
    state["step"] = kw.get("num_steps") or gin.query_parameter("train.num_steps")

  monkeypatch.setattr(evaluation, "run_contamination_check", fake_contamination)
  monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
  def latest_meta(model_dir):  # what the fake training's checkpoints would record
    if state["step"] is None:
      return None
    return state["step"], {train.INIT_KEY: train.init_identity(state["start"])}

  monkeypatch.setattr(heldout, "starting_checkpoint",
                      lambda out, init, *a, **k: init or os.path.join(out, "start"))
  monkeypatch.setattr(heldout, "_train", fake_train)
  monkeypatch.setattr(checkpoints, "finalized_steps",
                      lambda path: [] if state["step"] is None else [state["step"]])
  monkeypatch.setattr(train, "latest_meta", latest_meta)
  return calls


def test_rerun_redoes_the_stages_of_other_eval_settings(mixtures, tmp_path, monkeypatch,
                                                         clean_gin, caplog):
  """The review's case: a rerun with other evaluation settings re-evaluates "before" (and redoes
  the contamination check) instead of comparing it with an "after" evaluated differently; an
  unchanged rerun does no work; comparison.* state the settings."""
  from flanjax.gin_config import gin
  calls = _fakes(monkeypatch, tmp_path)
  out = tmp_path / "o"
  base = ["--collection", "offline", "--cluster", "nli", "--output_dir", str(out)]
  first = base + ["--num_steps", "10", "--gin.evaluate.templates='each'",
                  "--max_eval_examples", "4"]
  assert heldout.main(first) == 0
  assert calls["evaluate"] == ["before", "after"] and len(calls["contamination"]) == 1
  saved = json.load(open(out / "nli" / "comparison.json"))["clusters"]["nli"]
  assert saved["comparable"] is True and saved["settings_differ"] == {}
  assert saved["eval_settings"]["templates"] == "each"
  assert saved["eval_settings"]["max_examples"] == 4
  assert saved["eval_settings"]["split"] == "validation"
  md = open(out / "nli" / "comparison.md").read()
  assert "Before and after were evaluated with:" in md and "templates `each`" in md
  assert "max_examples `4`" in md

  # Unchanged: nothing is evaluated or checked again.
  for v in calls.values():
    v.clear()
  gin.clear_config()
  stamp = os.path.getmtime(out / "nli" / "before" / "metrics.json")
  assert heldout.main(first) == 0
  assert calls["evaluate"] == [] and calls["contamination"] == []
  assert os.path.getmtime(out / "nli" / "before" / "metrics.json") == stamp

  # Other settings (no gin flag: templates sampled; 6 examples) and more steps: every stage
  # that depends on them is redone.
  gin.clear_config()
  caplog.clear()
  assert heldout.main(base + ["--num_steps", "20", "--max_eval_examples", "6"]) == 0
  assert calls["evaluate"] == ["before", "after"]
  assert calls["contamination"] == [{"threshold": 0.01, "max_train_examples": 20000,
                                     "max_eval_examples": 6}]
  assert ("nli/before: re-evaluating the starting checkpoint: it was evaluated with "
          "max_examples=4, templates='each', now max_examples=6, templates='sampled'"
          in caplog.text)
  assert "nli: redoing the contamination check: it was made with max_eval_examples=4, " \
         "now max_eval_examples=6" in caplog.text
  for stage in ("before", "after"):
    m = reports.read_metrics(str(out / "nli" / stage))
    assert m["templates"] == "sampled" and m["tasks"]["offline_nli"]["num_examples"] == 6
  cont = json.load(open(out / "nli" / "contamination.json"))
  assert cont["check_settings"]["max_eval_examples"] == 6
  saved = json.load(open(out / "nli" / "comparison.json"))["clusters"]["nli"]
  assert saved["comparable"] is True and saved["after_step"] == 20
  assert saved["eval_settings"]["templates"] == "sampled"
  assert saved["eval_settings"]["max_examples"] == 6
  assert saved["gain"] == pytest.approx(0.0)

  # Only the model moved on: "before" and the contamination check are kept.
  for v in calls.values():
    v.clear()
  gin.clear_config()
  assert heldout.main(base + ["--num_steps", "30", "--max_eval_examples", "6"]) == 0
  assert calls["evaluate"] == ["after"] and calls["contamination"] == []


def test_a_rerun_from_another_start_is_refused(mixtures, tmp_path, monkeypatch, clean_gin):
  """The cluster's model records where it started: a rerun that starts elsewhere (another
  --init_checkpoint) would resume that model and credit its gain to the new start, so it is
  refused before any stage runs. A "before" of another checkpoint is re-evaluated."""
  from flanjax.gin_config import gin
  calls = _fakes(monkeypatch, tmp_path)
  out, other = tmp_path / "o", tmp_path / "other"
  other.mkdir()
  base = ["--collection", "offline", "--cluster", "nli", "--output_dir", str(out),
          "--num_steps", "10"]
  assert heldout.main(base) == 0
  for v in calls.values():
    v.clear()
  gin.clear_config()
  with pytest.raises(heldout.HeldoutError, match=(
      rf"^{out / 'nli' / 'model'} was trained \(to step 10\) from {out / 'start'}, but "
      rf"this run starts from {other}: rerun with the --init_checkpoint it was trained from, or "
      r"use a new --output_dir\. Nothing was changed\.$")):
    heldout.main(base + ["--init_checkpoint", str(other)])
  assert calls == {"contamination": [], "evaluate": [], "train": []}
  gin.clear_config()
  assert heldout.main(base + ["--init_checkpoint", str(out / "start")]) == 0
  assert calls["evaluate"] == [] and calls["train"]
  before = str(out / "nli" / "before")
  assert heldout.stage_stale(before, heldout.eval_settings(), checkpoint=str(out / "start")
                             ) is None
  assert heldout.stage_stale(before, heldout.eval_settings(), checkpoint=str(other)) == (
      f"it evaluated {out / 'start'}, the start is now {other}")


def test_an_interrupted_training_is_not_evaluated(mixtures, tmp_path, monkeypatch, clean_gin,
                                                  capsys):
  """Training stopped before num_steps (SIGTERM, stop_after_steps) leaves no "after" and no
  comparison: the partial model is not reported as the cluster's result; a rerun resumes."""
  from flanjax.gin_config import gin
  calls = _fakes(monkeypatch, tmp_path)
  real_train = heldout._train  # the fake's: the model reaches num_steps
  # As a preempted run: its last checkpoint is at step 4 of 10.
  monkeypatch.setattr(heldout, "_train", lambda **kw: real_train(**dict(kw, num_steps=4)))
  out = tmp_path / "o"
  argv = ["--collection", "offline", "--cluster", "nli", "--output_dir", str(out),
          "--num_steps", "10"]
  assert heldout.main(argv) == 0
  assert calls["evaluate"] == ["before"]
  assert "nli: training stopped at step 4 of 10; nothing was evaluated. Rerun the same command " \
         "to resume." in capsys.readouterr().out
  assert not (out / "nli" / "after").exists() and not (out / "nli" / "comparison.json").exists()
  gin.clear_config()
  monkeypatch.setattr(heldout, "_train", real_train)
  calls["evaluate"].clear()
  assert heldout.main(argv) == 0  # the rerun finishes training, then evaluates
  assert calls["evaluate"] == ["after"]
  assert json.load(open(out / "nli" / "comparison.json"))["clusters"]["nli"]["after_step"] == 10


def test_a_saved_random_start_of_another_size_is_refused(mixtures, tmp_path):
  """`<out>/start` is made once, at the first run's --model_size: a rerun at another size is
  refused (it had silently trained the first size)."""
  import seqio
  vocab = seqio.ByteVocabulary()
  start = heldout.starting_checkpoint(str(tmp_path), None, "tiny", vocab)
  assert heldout.starting_checkpoint(str(tmp_path), None, "tiny", vocab) == start
  with pytest.raises(heldout.HeldoutError, match=(
      rf"^{tmp_path / 'start'} holds the random initialisation this output_dir's clusters "
      r"started from, a model with d_model=\d+, .*; --model_size small differs\. Rerun with the "
      r"--model_size it was made with, or use a new --output_dir\. Nothing was changed\.$")):
    heldout.starting_checkpoint(str(tmp_path), None, "small", vocab)


def test_stage_settings_are_those_its_metrics_json_records(tmp_path):
  """A stage is reused only when its metrics.json records the current settings; one without
  them (an earlier flanjax's evaluation) is redone."""
  stage = str(tmp_path / "before")
  settings = heldout.eval_settings({"max_examples": 4})
  _fake_eval(stage, "nli", 30.0)
  assert heldout.recorded_settings(stage) == {}
  assert heldout.stage_stale(stage, settings) == (
      f"its evaluation settings ({', '.join(sorted(heldout.EVAL_SETTINGS))}) were not recorded (an "
      "earlier flanjax's evaluation)")
  _fake_eval(stage, "nli", 30.0, settings=settings)
  assert heldout.recorded_settings(stage) == settings
  assert heldout.stage_stale(stage, settings) is None
  assert "max_examples=4, now max_examples=5" in heldout.stage_stale(
      stage, dict(settings, max_examples=5))
  assert heldout.stage_stale(str(tmp_path / "none"), settings) == ""


def test_collect_refuses_a_gain_between_different_settings(tmp_path):
  out = tmp_path / "o"
  for stage, n in (("before", 4), ("after", 6)):
    _fake_eval(out / "nli" / stage, "nli", 30.0 + n, step=10,
               settings=heldout.eval_settings({"max_examples": n}))
  row = heldout.collect_cluster(str(out), "nli", "offline")
  assert row["comparable"] is False and row["gain"] is None
  assert row["settings_differ"] == {"max_examples": {"before": 4, "after": 6}}
  assert row["tasks"]["t_nli"]["gain"] is None
  md = open(out / "nli" / "comparison.md").read()
  assert "| nli | 34.00 | 36.00 | not comparable |" in md
  assert "max_examples `4` before, `6` after" in md
  out = heldout.collect_all(str(tmp_path / "o"), ["nli"], "offline")
  assert "not comparable" in open(tmp_path / "o" / "comparison.md").read()


def test_collect_flags_unrecorded_settings_and_refuses_other_example_counts(tmp_path):
  """Results of an earlier flanjax (no recorded settings): the gain is given, flagged; where a
  task was evaluated on other numbers of examples it is refused."""
  def stage(name, n):
    res = reports.task_results({"t": {"accuracy": 40.0 + n}},
                               {"t": {"cluster": "nli", "metric": "accuracy", "num_examples": n}})
    res["step"] = 3
    reports.write_eval_reports(str(tmp_path / "nli" / name), res)
  stage("before", 4)
  stage("after", 4)
  row = heldout.collect_cluster(str(tmp_path), "nli", "offline")
  assert row["comparable"] is None and row["gain"] == pytest.approx(0.0)
  assert row["settings_unrecorded"] == list(heldout.EVAL_SETTINGS)
  assert "**not recorded**" in open(tmp_path / "nli" / "comparison.md").read()
  stage("after", 6)
  row = heldout.collect_cluster(str(tmp_path), "nli", "offline")
  assert row["comparable"] is False and row["gain"] is None
  assert row["settings_differ"] == {"num_examples of t": {"before": 4, "after": 6}}


@pytest.mark.parametrize("binding,message", [
    ("--gin.evaluate.templates='all'",
     r"^--gin.evaluate.templates='all' \(evaluate.templates\): use one of sampled, each\.$"),
    ("--gin.evaluate.num_shots=-1", r"^--gin.evaluate.num_shots=-1 \(evaluate.num_shots\): "
                                    r"must be an integer >= 0"),
    ("--gin.evaluate.max_examples=0", r"^--max_eval_examples=0 \(evaluate.max_examples\)"),
    ("--gin.evaluate.decode_method='sample'", r"^--gin.evaluate.decode_method='sample' "
                                              r"\(evaluate.decode_method\): use one of greedy, "
                                              r"beam\.$"),
    ("--gin.evaluate.task_feature_lengths={'inputs': 0}",
     r"^--gin.evaluate.task_feature_lengths=\{'inputs': 0\} \(evaluate.task_feature_lengths\): "
     r"give a dict of positive lengths"),
])
def test_bad_eval_settings_fail_before_anything_is_written(mixtures, tmp_path, monkeypatch,
                                                            clean_gin, binding, message):
  from flanjax import evaluation

  def never(*args, **kwargs):
    pytest.fail("ran a stage")
  monkeypatch.setattr(evaluation, "run_contamination_check", never)
  monkeypatch.setattr(evaluation, "evaluate", never)
  monkeypatch.setattr(heldout, "starting_checkpoint", never)
  out = tmp_path / "held"
  for mode in ([], ["--emit_jobs"]):
    with pytest.raises(heldout.HeldoutError, match=message):
      heldout.main(["--collection", "offline", "--all" if mode else "--cluster", *(
          mode or ["nli"]), "--output_dir", str(out), binding])
  assert not out.exists()


def test_help_names_the_gin_bindings(capsys):
  with pytest.raises(SystemExit):
    heldout.main(["--help"])
  text = " ".join(capsys.readouterr().out.split())
  assert "--gin.train.NAME=VALUE" in text and "--gin.evaluate.NAME=VALUE" in text


def test_a_start_of_another_vocabulary_is_refused_before_any_stage(mixtures, tmp_path):
  """--init_checkpoint with another vocabulary than the collection's: refused before the
  contamination check and the "before" evaluation (train would refuse it only after them)."""
  import jax

  from flanjax import checkpoints, model
  from flanjax.config import get_config
  config = get_config("tiny", vocab_size=1024, dtype="float32")
  params = jax.device_get(model.init_params(config, jax.random.PRNGKey(0)))
  checkpoints.save_pretrained(tmp_path / "bytes", params, config, {"type": "byte"})
  out = tmp_path / "ho"
  with pytest.raises(heldout.HeldoutError, match=(
      r"^--init_checkpoint .*bytes was trained with the vocabulary \{'type': 'byte'\} .* but "
      r"mixture 'offline_without_nli' is tokenized with .*seqio.ByteVocabulary\(extra_ids=0\)")):
    heldout.main(["--collection", "offline", "--cluster", "nli", "--init_checkpoint",
                  str(tmp_path / "bytes"), "--output_dir", str(out), "--num_steps", "2"])
  assert not os.path.exists(out / "nli" / "contamination.json")
  assert not os.path.exists(out / "nli" / "before")


def test_unprepared_datasets_of_both_mixtures_are_named_before_any_stage(tmp_path):
  """heldout reads a training and an evaluation mixture: every unprepared dataset of both is
  named in one error before <out>/start or any stage is written."""
  import seqio
  from flanjax.tasks import flan2021

  from flanjax import registration
  names = flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(), prefix="ho_unprep_",
                                     keys=["cb", "rte", "copa"], tfds_data_dir=str(tmp_path))
  seqio.MixtureRegistry.add("hou_without_nli", names[2:], default_rate=1.0)
  seqio.MixtureRegistry.add("hou_heldout_nli", names[:2], default_rate=1.0)
  try:
    out = tmp_path / "ho"
    with pytest.raises(registration.DatasetNotPreparedError, match=(
        r"^3 TFDS datasets of mixtures 'hou_without_nli' and 'hou_heldout_nli' are not prepared "
        r".*super_glue/copa:1.0.2, super_glue/cb:1.0.2, super_glue/rte:1.0.2\. Prepare them with: "
        r"tfds build super_glue/copa super_glue/cb super_glue/rte")):
      heldout.main(["--collection", "hou", "--cluster", "nli", "--model_size", "tiny",
                    "--output_dir", str(out), "--num_steps", "2"])
    assert not os.path.exists(out / "start") and not os.path.exists(out / "nli")
  finally:
    seqio.MixtureRegistry.remove("hou_without_nli")
    seqio.MixtureRegistry.remove("hou_heldout_nli")


def test_the_training_recipe_is_printed_and_defaults_point_to_flans(clean_gin):
  """Without flags or gin bindings heldout trains with train's defaults, a short run: it says so
  and names FLAN's recipe; any one of them chosen, it prints the values alone."""
  from flanjax import gin_config
  assert heldout._recipe(None) == (
      "1000 steps, batch 128, lengths 512/128 (train's defaults, a short run; FLAN's recipe: "
      "--gin_file runs/finetune.gin, 30k steps at 1024/256)")
  assert heldout._recipe({"num_steps": 5}) == "5 steps, batch 128, lengths 512/128"
  gin_config.parse_gin(["runs/finetune.gin"])
  assert heldout._recipe(None) == "30000 steps, batch 128, lengths 1024/256"


def test_beam_settings_count_only_for_beam_search(tmp_path, clean_gin):
  """num_beams / alpha are evaluation settings of beam search alone: a greedy stage evaluated
  before they were recorded is reused, a beam stage with another beam width is redone."""
  stage = tmp_path / "s"
  greedy = heldout.eval_settings()
  assert greedy["num_beams"] is None and greedy["alpha"] is None
  old = {k: v for k, v in greedy.items() if k not in heldout.BEAM_SETTINGS}
  _fake_eval(stage, "nli", 30.0, settings=old)  # an earlier flanjax's greedy metrics.json
  assert heldout.stage_stale(stage, greedy) is None
  beam = heldout.eval_settings({"decode_method": "beam", "num_beams": 2})
  assert (beam["num_beams"], beam["alpha"]) == (2, 0.6)
  _fake_eval(stage, "nli", 30.0, settings=beam)
  assert heldout.stage_stale(stage, beam) is None
  assert "num_beams=2, now num_beams=8" in heldout.stage_stale(
      stage, heldout.eval_settings({"decode_method": "beam", "num_beams": 8}))
  with pytest.raises(heldout.HeldoutError, match=r"^--gin.evaluate.alpha=-1 \(evaluate.alpha\)"):
    kw = {"decode_method": "beam", "alpha": -1}
    heldout.check_eval_settings(heldout.eval_settings(kw), kw)
  # evaluate refuses a bad beam setting whatever the decoding: checked up front for greedy too.
  with pytest.raises(heldout.HeldoutError, match=r"^--gin.evaluate.num_beams=0 "):
    heldout.check_eval_settings(heldout.eval_settings({"num_beams": 0}), {"num_beams": 0})


def test_a_headline_changed_between_before_and_after_gives_no_gain(tmp_path):
  """A "before" evaluated by a flanjax that headlined another metric (ReCoRD's F1, now its rank
  accuracy) is not compared with the "after": no gain, the change named."""
  out = tmp_path / "o"
  for stage, metrics, headline in (("before", {"f1": 30.0, "rank_accuracy": 60.0}, "f1"),
                                   ("after", {"f1": 35.0, "rank_accuracy": 80.0},
                                    "rank_accuracy")):
    res = reports.task_results({"t_rec": metrics}, {"t_rec": {
        "cluster": "nli", "metric": "squad", "headline": headline}})
    res["step"] = 10
    res.update(heldout.eval_settings())
    reports.write_eval_reports(str(out / "nli" / stage), res)
  assert heldout.headline_changes(reports.read_metrics(str(out / "nli" / "before")),
                                  reports.read_metrics(str(out / "nli" / "after"))) == {
      "t_rec": ("f1", "rank_accuracy")}
  row = heldout.collect_cluster(str(out), "nli", "offline")
  assert row["comparable"] is False and row["gain"] is None
  assert row["settings_differ"] == {"headline of t_rec": {"before": "f1",
                                                          "after": "rank_accuracy"}}
  assert row["tasks"]["t_rec"]["gain"] is None


def test_a_rerun_re_evaluates_a_before_of_another_headline(mixtures, tmp_path, monkeypatch,
                                                           clean_gin, caplog):
  """A finished cluster whose "before" headlines another metric than its "after" (a flanjax
  version changed a task's headline between them): the rerun re-evaluates "before"."""
  calls = _fakes(monkeypatch, tmp_path)
  out = tmp_path / "o"
  argv = ["--collection", "offline", "--cluster", "nli", "--output_dir", str(out),
          "--num_steps", "10", "--max_eval_examples", "4"]
  assert heldout.main(argv) == 0
  path = out / "nli" / "before" / "metrics.json"
  m = json.load(open(path))
  m["tasks"]["offline_nli"]["primary"][0] = "f1"  # as an earlier flanjax would have headlined
  path.write_text(json.dumps(m))
  for v in calls.values():
    v.clear()
  assert heldout.main(argv) == 0
  assert calls["evaluate"] == ["before"]
  assert "nli/before: re-evaluating the starting checkpoint: its headline metrics differ " \
         "from after's (offline_nli: f1, now accuracy)." in caplog.text
  assert json.load(open(out / "nli" / "comparison.json"))["clusters"]["nli"]["comparable"]


def test_a_model_retrained_to_the_same_step_is_evaluated_again(mixtures, tmp_path, monkeypatch,
                                                                clean_gin):
  """The user removed <out>/nli/model (to change a training setting) and reran: the new model's
  "after" is evaluated, not the removed model's results of the same step reused."""
  base = ["--collection", "offline", "--cluster", "nli", "--output_dir", str(tmp_path / "o"),
          "--num_steps", "10"]
  calls = _fakes(monkeypatch, tmp_path)
  assert heldout.main(base) == 0
  assert calls["evaluate"] == ["before", "after"]
  calls = _fakes(monkeypatch, tmp_path)  # a new fake model: no checkpoints until it trains
  assert heldout.main(base + ["--gin.OptimizerConfig.learning_rate=0.5"]) == 0
  assert len(calls["train"]) == 1 and calls["evaluate"] == ["after"]


def test_other_task_sets_are_not_comparable(tmp_path):
  """A reused "before" over other tasks than "after" (the mixture changed) gives no gain."""
  for stage, scores in (("before", {"task_a": 50.0}),
                        ("after", {"task_a": 50.0, "task_b": 90.0})):
    res = reports.task_results({t: {"accuracy": v} for t, v in scores.items()},
                               {t: {"cluster": "nli", "metric": "accuracy", "num_examples": 10}
                                for t in scores})
    res.update(heldout.EVAL_SETTINGS, step=0)
    reports.write_eval_reports(str(tmp_path / "nli" / stage), res, [])
  row = heldout.collect_cluster(str(tmp_path), "nli")
  assert row["comparable"] is False and row["gain"] is None
  assert row["settings_differ"]["tasks"] == {"before": ["task_a"], "after": ["task_a", "task_b"]}


def test_gin_bindings_of_the_start_and_seed_are_heldouts_defaults(mixtures, tmp_path,
                                                                  monkeypatch, clean_gin):
  """train.init_checkpoint / train.seed bound by gin (a gin file that fine-tunes from a T5
  checkpoint) are the start and seed, unless --init_checkpoint / --seed say otherwise; they had
  been overridden unseen. train.model_dir is heldout's: refused."""
  calls = _fakes(monkeypatch, tmp_path)
  start = tmp_path / "t5_start"
  base = ["--collection", "offline", "--cluster", "nli", "--num_steps", "10",
          f"--gin.train.init_checkpoint='{start}'", "--gin.train.seed=5"]
  assert heldout.main(base + ["--output_dir", str(tmp_path / "a")]) == 0
  assert (calls["train"][0]["init_checkpoint"], calls["train"][0]["seed"]) == (str(start), 5)
  calls = _fakes(monkeypatch, tmp_path)
  assert heldout.main(base + ["--output_dir", str(tmp_path / "b"), "--seed", "7"]) == 0
  assert calls["train"][0]["seed"] == 7
  with pytest.raises(heldout.HeldoutError, match=r"^train.model_dir is bound by gin, but heldout "
                                                 r"trains each cluster in <output_dir>/<cluster>/"
                                                 r"model: drop the binding"):
    heldout.main(base + ["--output_dir", str(tmp_path / "c"), "--gin.train.model_dir='/x'"])


def test_a_start_that_gained_steps_is_evaluated_again(mixtures, tmp_path, monkeypatch,
                                                      clean_gin):
  """--init_checkpoint names a folder whose latest step is the start: once it has a later step,
  "before" (of the earlier one) is evaluated again, not reused by the folder's name."""
  from flanjax import checkpoints
  calls = _fakes(monkeypatch, tmp_path)
  start = tmp_path / "pretrained"
  start.mkdir()
  fake_steps = checkpoints.finalized_steps  # the fakes' model steps
  start_steps = [0]
  monkeypatch.setattr(checkpoints, "finalized_steps",
                      lambda path: list(start_steps) if str(path) == str(start) else
                      fake_steps(path))
  base = ["--collection", "offline", "--cluster", "nli", "--output_dir", str(tmp_path / "o"),
          "--num_steps", "10", "--init_checkpoint", str(start)]
  assert heldout.main(base) == 0 and calls["evaluate"] == ["before", "after"]
  for v in calls.values():
    v.clear()
  assert heldout.main(base) == 0 and calls["evaluate"] == []  # unchanged: reused
  start_steps.append(5)
  assert heldout.stage_stale(str(tmp_path / "o" / "nli" / "before"), heldout.eval_settings(),
                             checkpoint=str(start), step=5) == (
      "it evaluated step 0, the model is at step 5")
  from flanjax.gin_config import gin
  gin.clear_config()
  assert heldout.main(base) == 0 and calls["evaluate"][0] == "before"
