"""The `flanjax` command: help, unknown commands, README/CI agreement."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from flanjax import cli

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys):
  assert cli.main([]) == 0
  out = capsys.readouterr().out
  for name in cli.COMMANDS:
    assert name in out


def test_unknown_command_suggests_closest(capsys):
  assert cli.main(["trian"]) == 2
  err = capsys.readouterr().err
  assert "unknown command 'trian'" in err
  assert "'train'" in err
  assert "Traceback" not in err


def test_every_command_resolves_to_a_function():
  import importlib
  for name, (module, fn, _) in cli.COMMANDS.items():
    mod = importlib.import_module(module)
    assert callable(getattr(mod, fn)), name


def test_console_script_runs_from_any_directory(tmp_path):
  exe = pathlib.Path(sys.executable).parent / "flanjax"
  if not exe.exists():
    pytest.fail(f"console script missing next to {sys.executable}: is flanjax pip-installed?")
  out = subprocess.run([str(exe), "--help"], cwd=tmp_path, capture_output=True, text=True,
                       check=True, env={**os.environ, "PYTHONPATH": ""})
  assert "quickstart" in out.stdout


def _readme_block(name: str) -> str:
  text = (REPO / "README.md").read_text()
  m = re.search(rf"<!-- {name} -->\s*```bash\n(.*?)```", text, re.S)
  assert m, f"README.md has no '<!-- {name} -->' bash block"
  return m.group(1).strip()


def test_ci_runs_the_readme_test_command_verbatim():
  test_cmd = _readme_block("test-command")
  ci = (REPO / ".ci" / "run").read_text()
  assert test_cmd in ci.splitlines(), (test_cmd, "not a line of .ci/run")


def test_readme_register_task_snippet_runs(tmp_path, monkeypatch):
  """The README's "Registering your own task" code works as printed, on local JSONL files."""
  import json

  text = (REPO / "README.md").read_text()
  m = re.search(r"<!-- register-task -->\s*```python\n(.*?)```", text, re.S)
  assert m, "README.md has no '<!-- register-task -->' python block"
  code = m.group(1)
  assert len(code.strip().splitlines()) <= 15
  data = tmp_path / "data"
  data.mkdir()
  for split, n in (("train", 20), ("dev", 6)):
    with open(data / f"{split}.jsonl", "w") as f:
      for i in range(n):
        f.write(json.dumps({"review": f"review number {i} was {'great' if i % 2 else 'bad'}",
                            "label": "positive" if i % 2 else "negative"}) + "\n")
  monkeypatch.chdir(tmp_path)
  from flanjax import vocab
  # Stands in for T5's spiece.model (the default vocabulary), which cannot be downloaded here.
  monkeypatch.setenv("FLANJAX_T5_VOCAB", vocab.OFFLINE_SPM_PATH)
  exec(compile(code, "README.md", "exec"), {})
  from flanjax import catalog
  rows = catalog.preview("my_reviews", n=2)
  assert len(rows) == 2 and "OPTIONS:" in rows[0][0] + rows[1][0]
  assert {r[0] for r in catalog.mixture_table("my_mix")} == {"my_reviews", "flan2021_sst2"}


def test_module_is_found_in_the_working_directory(tmp_path, monkeypatch):
  """`--module my_tasks` finds my_tasks.py in the folder the command runs from (as `python -m`
  does), although the console script's sys.path[0] is its bin/ folder."""
  (tmp_path / "h5_cwd_tasks.py").write_text("raise RuntimeError('imported h5_cwd_tasks')\n")
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
  monkeypatch.delitem(sys.modules, "h5_cwd_tasks", raising=False)
  with pytest.raises(RuntimeError, match="imported h5_cwd_tasks"):
    cli.main(["mixture", "--module", "h5_cwd_tasks", "offline"])
  assert sys.path[0] == str(tmp_path)


def test_gin_imports_find_modules_in_the_working_directory(tmp_path, monkeypatch):
  """A gin file's `import my_tasks` (the README's way to train on your own tasks) finds
  my_tasks.py in the folder `flanjax train` runs from, as `--module` does."""
  (tmp_path / "h6_gin_tasks.py").write_text("raise RuntimeError('imported h6_gin_tasks')\n")
  (tmp_path / "run.gin").write_text("import h6_gin_tasks\n")
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
  monkeypatch.delitem(sys.modules, "h6_gin_tasks", raising=False)
  monkeypatch.setenv("FLANJAX_TRACEBACK", "1")  # the import's own error, not the CLI's line
  with pytest.raises(Exception, match="imported h6_gin_tasks"):
    cli.main(["train", f"--gin_file={tmp_path}/run.gin", f"--model_dir={tmp_path}/m"])
  assert sys.path[0] == str(tmp_path)


@pytest.fixture
def interrupted_train(monkeypatch):
  from flanjax import compilation_cache, train

  def interrupted(argv):
    raise KeyboardInterrupt
  monkeypatch.setattr(train, "main", interrupted)
  monkeypatch.setattr(compilation_cache, "enable", lambda *a, **k: None)


def test_interrupted_train_names_the_last_checkpoint(interrupted_train, tmp_path, capsys):
  run = tmp_path / "run"
  for step in (4, 8):
    (run / str(step) / "params").mkdir(parents=True)
  (run / "12.orbax-checkpoint-tmp-1").mkdir()  # an unfinished save is no resume point
  assert cli.main(["train", "--model_dir", str(run), "--gin.train.num_steps=20"]) == 130
  err = capsys.readouterr().err
  assert err.strip() == (f"flanjax train: interrupted. The last saved checkpoint is step 8 in "
                         f"{run}; re-run the same command to resume from it.")
  assert cli.main(["train", f"--model_dir={tmp_path / 'new'}"]) == 130
  assert (f"No checkpoint was saved in {tmp_path / 'new'} yet; re-running the same command "
          "starts from the beginning.") in capsys.readouterr().err


def test_interrupted_quickstart_names_its_model_dir(tmp_path, monkeypatch, capsys):
  from flanjax import compilation_cache, quickstart

  def interrupted(argv):
    raise KeyboardInterrupt
  monkeypatch.setattr(quickstart, "main", interrupted)
  monkeypatch.setattr(compilation_cache, "enable", lambda *a, **k: None)
  (tmp_path / "qs" / "model" / "2" / "params").mkdir(parents=True)
  assert cli.main(["quickstart", "--output_dir", str(tmp_path / "qs")]) == 130
  assert f"step 2 in {tmp_path / 'qs' / 'model'}; re-run" in capsys.readouterr().err


def test_compiling_commands_load_tensorflow_quietly():
  """Commands that load a checkpoint's vocabulary (seqio, so TensorFlow) import it with its C++
  start-up banner silenced."""
  assert set(cli._COMPILING_COMMANDS) <= set(cli._DATA_COMMANDS)


def test_int_flags():
  import argparse
  assert cli.positive_int("3") == 3
  with pytest.raises(argparse.ArgumentTypeError, match="must be an integer >= 1, got 0"):
    cli.positive_int("0")
  with pytest.raises(argparse.ArgumentTypeError, match="'x' is not an integer"):
    cli.int_at_least(0)("x")
  assert cli.int_at_least(0)("0") == 0


def test_interrupted_train_reads_model_dir_from_gin(tmp_path, monkeypatch, capsys):
  from flanjax import compilation_cache, gin_config, train
  from flanjax.gin_config import gin
  (tmp_path / "g" / "3" / "params").mkdir(parents=True)

  def interrupted(argv):
    gin_config.register()
    gin.bind_parameter("train.model_dir", str(tmp_path / "g"))
    raise KeyboardInterrupt
  monkeypatch.setattr(train, "main", interrupted)
  monkeypatch.setattr(compilation_cache, "enable", lambda *a, **k: None)
  gin.clear_config()
  try:
    assert cli.main(["train", "--gin_file=x.gin"]) == 130
  finally:
    gin.clear_config()
  assert f"step 3 in {tmp_path / 'g'}; re-run" in capsys.readouterr().err




def _flag_error(argv: list[str], capsys) -> str:
  """Runs `flanjax <argv>` through its module's function (no compilation cache); the stderr of a
  flag mistake, which must exit with argparse's status 2."""
  import importlib
  module, fn, _ = cli.COMMANDS[argv[0]]
  with pytest.raises(SystemExit) as e:
    getattr(importlib.import_module(module), fn)(argv[1:])
  assert e.value.code == 2
  return capsys.readouterr().err


def _one_line(err: str, command: str) -> str:
  lines = err.splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith(f"flanjax {command}: error: "), err
  assert lines[0].endswith(f" Run 'flanjax {command} --help' for the flags."), err
  assert "usage:" not in err
  return lines[0]


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_commands_flag_mistake_is_one_line(command, capsys):
  # Required flags missing, or the unknown flag itself: either way one line, status 2.
  argv = [command, "--definitely_not_a_flag", "x"]
  if command == "train":  # the trainer's unknown flags are a ConfigError (one line via cli.main)
    argv = [command, "--num_processes", "many"]
  line = _one_line(_flag_error(argv, capsys), command)
  assert "definitely_not_a_flag" in line or "required" in line or "many" in line


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_commands_help_is_argparses_usage(command, capsys):
  import importlib
  module, fn, _ = cli.COMMANDS[command]
  with pytest.raises(SystemExit) as e:
    getattr(importlib.import_module(module), fn)(["--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith(f"usage: flanjax {command} ") and "options:" in out and "--help" in out


def test_unknown_flag_is_one_line_with_the_closest_name(capsys):
  line = _one_line(_flag_error(["eval", "--checkpoint", "x", "--task", "t", "--max_exampels",
                                "3"], capsys), "eval")
  assert line == ("flanjax eval: error: unrecognized arguments: --max_exampels 3. Did you mean "
                  "--max_examples? Run 'flanjax eval --help' for the flags.")
  # Several unknown flags: each named with its own suggestion.
  line = _one_line(_flag_error(["infer", "--checkpoint", "x", "--mode", "score", "--input", "i",
                                "--output", "o", "--batch-size=4", "--max_input_lenght", "9"],
                               capsys), "infer")
  assert ("unrecognized arguments: --batch-size=4 --max_input_lenght 9. --batch-size: did you "
          "mean --batch_size? --max_input_lenght: did you mean --max_input_length?") in line


def test_an_abbreviated_flag_is_refused_not_expanded(capsys):
  # argparse's allow_abbrev had run `--template each` as `--templates each`.
  line = _one_line(_flag_error(["eval", "--checkpoint", "x", "--task", "t", "--template",
                                "each"], capsys), "eval")
  assert ("unrecognized arguments: --template each. Did you mean --templates? Flags are not "
          "abbreviated.") in line
  line = _one_line(_flag_error(["quickstart", "--output_dir", "o", "--eval", "5"], capsys),
                   "quickstart")
  assert "--eval 5. Did you mean --eval_examples? Flags are not abbreviated." in line
  # An abbreviation of several flags names them all.
  line = _one_line(_flag_error(["preview", "t", "--mod", "m"], capsys), "preview")
  assert "Did you mean --mode or --module?" in line
  # A misspelt flag beside a missing required one: the misspelling is named, not only the
  # required flag argparse reports.
  line = _one_line(_flag_error(["eval", "--chekpoint", "x"], capsys), "eval")
  assert line == ("flanjax eval: error: unrecognized arguments: --chekpoint (and one of the "
                  "arguments --task --mixture is required). Did you mean --checkpoint? Run "
                  "'flanjax eval --help' for the flags.")
  # The trainer refuses them too (a one-line ConfigError through cli.main).
  from flanjax import gin_config
  with pytest.raises(gin_config.ConfigError, match=r"--model_d \(did you mean --model_dir\?\)"):
    gin_config.parse_train_flags(["--model_d=/tmp/x"])


def test_an_invalid_choice_is_one_line(capsys):
  line = _one_line(_flag_error(["eval", "--checkpoint", "x", "--task", "t", "--templates",
                                "all"], capsys), "eval")
  assert line.startswith("flanjax eval: error: argument --templates: invalid choice: 'all' "
                         "(choose from ")
  assert "sampled" in line and "each" in line
  line = _one_line(_flag_error(["convert", "--from-hf", "a", "--to", "b", "--size", "huge"],
                               capsys), "convert")
  assert "argument --size: invalid choice: 'huge'" in line


def test_flag_parser_keeps_exact_flags_values_and_short_options():
  p = cli.FlagParser(prog="flanjax t")
  p.add_argument("--max_examples", type=int)
  p.add_argument("-n", type=int, default=0)
  args = p.parse_args(["--max_examples=3", "-n5"])
  assert (args.max_examples, args.n) == (3, 5)
  assert p.closest_flags(["--max", "3", "-1", "x"]) == {"--max": ["--max_examples"]}


def test_train_on_unprepared_data_is_one_line_and_leaves_no_model(tmp_path):
  """`flanjax train` on a mixture whose TFDS datasets are missing: one line naming them all (no
  seqio "Failed to load task" log line above it), and no flanjax_model.json in the new
  model_dir, which would make it look like a checkpoint."""
  from conftest import CACHE_ENV, NEUTRAL_CWD
  (tmp_path / "unprep_cli_tasks.py").write_text(
      "import seqio\n"
      "from flanjax.tasks import flan2021\n"
      "names = flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(),\n"
      "                                   prefix='unprep_cli_', keys=['cb', 'rte'])\n"
      "seqio.MixtureRegistry.add('unprep_cli_mix', names, default_rate=1.0)\n")
  (tmp_path / "run.gin").write_text("import unprep_cli_tasks\n")
  exe = pathlib.Path(sys.executable).parent / "flanjax"
  env = {k: v for k, v in os.environ.items()
         if k not in ("TF_CPP_MIN_LOG_LEVEL", "FLANJAX_VERBOSE", "FLANJAX_TRACEBACK")}
  env.update(CACHE_ENV, JAX_PLATFORMS="cpu", PYTHONPATH=str(tmp_path))
  model_dir = tmp_path / "run"
  proc = subprocess.run(
      [str(exe), "train", "--gin_file=models/t5_1_1_tiny.gin", f"--gin_file={tmp_path}/run.gin",
       "--gin.train.mixture='unprep_cli_mix'", f"--gin.train.tfds_data_dir='{tmp_path}/tfds'",
       "--gin.train.num_steps=2", "--gin.train.batch_size=2", f"--model_dir={model_dir}"],
      cwd=NEUTRAL_CWD, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-3000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith("flanjax train: error: 2 TFDS datasets of mixture 'unprep_cli_mix' "
                             "are not prepared"), lines[0]
  assert "tfds build super_glue/cb super_glue/rte" in lines[0]
  assert not os.path.exists(model_dir / "flanjax_model.json")
