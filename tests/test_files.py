"""files.atomic_write: whole files only, and the permissions a plain `open(path, "w")` gives;
files.check_writable_dir: a probe that names the folder's purpose and leaves nothing behind;
files.iter_jsonl / decode_text: UTF-8 JSONL rows, errors naming file:line."""
import errno
import os
import re
import stat
import tempfile

import pytest

from flanjax import files
from flanjax.errors import FlanjaxError


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


class _UserError(ValueError):
  pass


def _probe_dirs(monkeypatch):
  """Records the folder of every probe file `check_writable_dir` creates."""
  dirs, mkstemp = [], tempfile.mkstemp

  def recording(*args, dir=None, **kwargs):
    dirs.append(dir)
    return mkstemp(*args, dir=dir, **kwargs)
  monkeypatch.setattr(tempfile, "mkstemp", recording)
  return dirs


def test_check_writable_dir_probes_where_the_folders_would_be_made(tmp_path, monkeypatch):
  dirs = _probe_dirs(monkeypatch)
  deep = tmp_path / "a" / "b"
  assert files.check_writable_dir(str(deep), "--output_dir") == str(deep)
  assert dirs == [str(tmp_path)] and os.listdir(tmp_path) == []  # no folder made, no probe left
  (tmp_path / "kept").mkdir()
  assert files.check_writable_dir(str(tmp_path / "kept"), "x") == str(tmp_path / "kept")
  assert dirs[-1] == str(tmp_path / "kept") and os.listdir(tmp_path / "kept") == []
  # Relative paths come back absolute.
  monkeypatch.chdir(tmp_path)
  assert files.check_writable_dir("kept", "x") == str(tmp_path / "kept")


def test_check_writable_dir_make_missing_removes_only_what_it_made(tmp_path, monkeypatch):
  dirs = _probe_dirs(monkeypatch)
  (tmp_path / "user").mkdir()  # the user's (empty) folder stays
  path = tmp_path / "user" / "a" / "b"
  assert files.check_writable_dir(str(path), "model_dir", make_missing=True) == str(path)
  assert dirs == [str(path)]  # the probe went in the folder itself
  assert os.listdir(tmp_path) == ["user"] and os.listdir(tmp_path / "user") == []
  # Another process writes into a folder the check made: that folder (and its parents) stay.
  mkstemp = tempfile.mkstemp

  def other_process_writes(*args, dir=None, **kwargs):
    (tmp_path / "user" / "a" / "theirs").write_text("x")
    return mkstemp(*args, dir=dir, **kwargs)
  monkeypatch.setattr(tempfile, "mkstemp", other_process_writes)
  files.check_writable_dir(str(path), "model_dir", make_missing=True)
  assert sorted(os.listdir(tmp_path / "user" / "a")) == ["theirs"]


def test_check_writable_dir_looks_again_when_a_folder_is_removed_under_it(tmp_path, monkeypatch):
  """Several processes check one new folder: one may remove a folder it made while another
  probes in it. The check looks again instead of calling the folder unwritable."""
  calls, mkstemp = [], tempfile.mkstemp

  def removed_once(*args, **kwargs):
    calls.append(kwargs["dir"])
    if len(calls) == 1:
      raise FileNotFoundError(errno.ENOENT, "No such file or directory")
    return mkstemp(*args, **kwargs)
  monkeypatch.setattr(tempfile, "mkstemp", removed_once)
  path = tmp_path / "run"
  assert files.check_writable_dir(str(path), "model_dir", make_missing=True) == str(path)
  assert calls == [str(path), str(path)] and os.listdir(tmp_path) == []


@pytest.mark.parametrize("make_missing", [False, True])
def test_check_writable_dir_errors_name_the_purpose(tmp_path, monkeypatch, make_missing):
  (tmp_path / "f").write_text("x")
  f = re.escape(str(tmp_path / "f"))
  with pytest.raises(_UserError, match=rf"^eval output {f} is a file, not a folder; give a "
                                        r"folder path\.$"):
    files.check_writable_dir(str(tmp_path / "f"), "eval output", _UserError,
                             make_missing=make_missing)
  with pytest.raises(_UserError, match=rf"^eval output {f}/sub/x: {f} is a file, not a folder"):
    files.check_writable_dir(str(tmp_path / "f" / "sub" / "x"), "eval output", _UserError,
                             make_missing=make_missing)
  os.symlink(tmp_path / "gone", tmp_path / "link")
  with pytest.raises(_UserError, match=r"^eval output .*/link/x: .*/link is a broken link, not a "
                                        r"folder"):
    files.check_writable_dir(str(tmp_path / "link" / "x"), "eval output", _UserError,
                             make_missing=make_missing)

  def read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")
  monkeypatch.setattr(tempfile, "mkstemp", read_only)
  # The folder the probe failed in is named where it is not the folder itself.
  where = "" if make_missing else re.escape(f" in {tmp_path}")
  with pytest.raises(_UserError, match=rf"^model_dir {re.escape(str(tmp_path))}/new/run is not "
                                        rf"writable \(Read-only file system{where}\); choose a "
                                        r"folder you can write to, on a disk with free space\.$"):
    files.check_writable_dir(str(tmp_path / "new" / "run"), "model_dir", _UserError,
                             make_missing=make_missing)
  assert sorted(os.listdir(tmp_path)) == ["f", "link"]


def test_check_writable_dir_full_disk(tmp_path, monkeypatch):
  """A full disk may still create empty files: the probe writes and syncs a byte."""
  def no_space(fd):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(os, "fsync", no_space)
  for make_missing in (False, True):
    with pytest.raises(FlanjaxError, match=r"^convert target .*/out is not writable \(No space "
                                           r"left on device"):
      files.check_writable_dir(str(tmp_path / "out"), "convert target", make_missing=make_missing)
    assert os.listdir(tmp_path) == []  # no probe, no folder left


def test_check_writable_dir_a_folder_that_cannot_be_made(tmp_path, monkeypatch):
  def no_mkdir(path, *args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied", path)
  monkeypatch.setattr(os, "mkdir", no_mkdir)
  with pytest.raises(FlanjaxError, match=rf"^model_dir .*/a/b is not writable \(Permission denied "
                                         rf"in {re.escape(str(tmp_path))}\)"):
    files.check_writable_dir(str(tmp_path / "a" / "b"), "model_dir", make_missing=True)


def test_iter_jsonl_rows_and_line_numbers(tmp_path):
  p = tmp_path / "rows.jsonl"
  # A byte-order mark (Notepad, Excel), blank lines, CRLF and a lone CR all keep line numbers.
  p.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \n{"a": "\xc3\xa9"}\r{"b": [1]}\n')
  expected = [(1, {"a": 1}), (4, {"a": "\u00e9"}), (5, {"b": [1]})]
  assert list(files.iter_jsonl(str(p))) == expected
  # Text read elsewhere (e.g. through tf.io.gfile for gs://) is parsed the same way.
  text = files.decode_text(p.read_bytes(), "gs://b/rows.jsonl")
  assert list(files.iter_jsonl("gs://b/rows.jsonl", text=text)) == expected
  p.write_text("")
  assert list(files.iter_jsonl(str(p))) == []


@pytest.mark.parametrize("content,hint,message", [
    ('{"a": 1}\n{"a": 1\n', "", r":2: not valid JSON \(Expecting ',' delimiter: line 1"),
    ('{"a": 1}\n\n["x"]\n', "", r":3: a list, not a JSON object; write one JSON object per "
                                 r"line\.$"),
    ('"x"\n', " with 'inputs'", r":1: a string, not a JSON object; write one JSON object per line "
                                 r"with 'inputs'\.$"),
    ("null\n", "", r":1: a null, not a JSON object"),
    ("3\n", "", r":1: a number, not a JSON object"),
    ("true\n", "", r":1: a boolean, not a JSON object"),
])
def test_iter_jsonl_errors_name_file_and_line(tmp_path, content, hint, message):
  p = tmp_path / "in.jsonl"
  p.write_text(content)
  with pytest.raises(_UserError, match="^" + re.escape(str(p)) + message):
    list(files.iter_jsonl(str(p), _UserError, hint))


def test_not_utf8_names_the_line_and_byte(tmp_path):
  p = tmp_path / "in.jsonl"
  p.write_bytes('{"a": "x"}\n{"a": "caf\u00e9"}\n'.encode("latin-1"))
  with pytest.raises(ValueError, match=f"^{re.escape(str(p))}:2: byte 0xe9 is not UTF-8; save "
                                       r"the file as UTF-8 text\.$"):
    list(files.iter_jsonl(str(p)))
  with pytest.raises(FlanjaxError, match=r"^x.csv:1: byte 0xff is not UTF-8; re-export it\.$"):
    files.decode_text(b"\xff", "x.csv", fix="re-export it")
