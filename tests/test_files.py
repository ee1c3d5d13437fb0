"""files.atomic_write: whole files only, and the permissions a plain `open(path, "w")` gives."""
import os
import stat

import pytest

from flanjax import files


@pytest.fixture
def umask():
  """Sets the process umask for one test and restores it afterwards."""
  old = os.umask(0o022)
  os.umask(old)
  yield lambda mask: os.umask(mask)
  os.umask(old)


def _mode(path):
  return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o002, 0o664), (0o027, 0o640)])
def test_new_file_gets_the_umask_mode_not_0600(tmp_path, umask, mask, expected):
  umask(mask)
  path = tmp_path / "flanjax_model.json"
  files.atomic_write(str(path), "{}\n")
  assert path.read_text() == "{}\n"
  assert _mode(path) == expected  # what colleagues on shared storage need to read it
  with open(tmp_path / "plain.txt", "w") as f:
    f.write("x")
  assert _mode(path) == _mode(tmp_path / "plain.txt")
  assert sorted(os.listdir(tmp_path)) == ["flanjax_model.json", "plain.txt"]  # no temp left


@pytest.mark.parametrize("mode", [0o600, 0o664, 0o444])
def test_replacing_a_file_keeps_its_mode(tmp_path, umask, mode):
  umask(0o022)
  path = tmp_path / "quickstart.md"
  path.write_text("old")
  os.chmod(path, mode)
  files.atomic_write(str(path), b"new")
  assert path.read_bytes() == b"new" and _mode(path) == mode
  assert os.listdir(tmp_path) == ["quickstart.md"]


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
  path = tmp_path / "out.jsonl"
  path.write_text("old\n")
  with pytest.raises(TypeError):
    files.atomic_write(str(path), 3)  # neither str nor bytes
  assert path.read_text() == "old\n"
  assert os.listdir(tmp_path) == ["out.jsonl"]
