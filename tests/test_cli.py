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
