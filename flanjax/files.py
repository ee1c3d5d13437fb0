"""File helpers: writing files so that readers never see a half-written one, checking that an
output folder can be written before long work, and reading UTF-8 text and JSONL files with
errors that name the file and line. No TensorFlow here (callers that read gs:// paths read the
bytes through tf.io.gfile and pass them in)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from typing import Any

from flanjax.errors import FlanjaxError


def _create_temp(folder: str, prefix: str, suffix: str) -> tuple[int, str]:
  """Creates a new file like `open(path, "w")` does: mode 0o666 less the umask (and any default
  ACL of `folder`), unlike `tempfile.mkstemp`'s 0o600 that would hide it from the user's group."""
  flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
  flags |= getattr(os, "O_BINARY", 0)
  for _ in range(100):
    tmp = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}{suffix}")
    try:
      return os.open(tmp, flags, 0o666), tmp
    except FileExistsError:
      continue
  raise FileExistsError(f"Could not create a temporary file {prefix}*{suffix} in {folder}.")


def atomic_write(path: str, data: str | bytes) -> None:
  """Writes `data` to `path` through a temporary file in the same folder and `os.replace`.

  A new file gets the mode `open(path, "w")` would give it; a replaced file keeps its mode.
  """
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = _create_temp(folder, "." + os.path.basename(path) + ".", ".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      try:
        old = os.stat(path)
      except OSError:
        old = None
      if old is not None and stat.S_ISREG(old.st_mode) and hasattr(os, "fchmod"):
        os.fchmod(f.fileno(), stat.S_IMODE(old.st_mode))
      f.write(data.encode("utf-8") if isinstance(data, str) else data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _write_probe(folder: str) -> None:
  """Creates a file in `folder`, writes a byte to it, syncs it (a full disk may still create
  empty files) and removes it."""
  fd, probe = tempfile.mkstemp(dir=folder, prefix=".flanjax-write-test-")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(b"flanjax")
      f.flush()
      os.fsync(f.fileno())
  finally:
    with contextlib.suppress(OSError):
      os.remove(probe)


def check_writable_dir(path, what: str, error: type[Exception] = FlanjaxError, *,
                       make_missing: bool = False) -> str:
  """Checks, before long work, that files can be written in folder `path`; returns it absolute.

  A probe file is created, written, synced and removed in `path` or, when `path` does not exist
  yet, in its nearest existing folder (where its folders would be made), so a read-only or full
  location fails before any work. With `make_missing` the missing folders are made instead, so
  that the probe lands in `path` itself, and removed again afterwards (deepest first, stopping
  at one that another process has written to). No folder that was there is ever removed. Safe
  on several processes at once: each writes its own probe, and when another process removed a
  folder under the check, the check looks again.

  Raises `error` naming `what` (what the folder is for: "model_dir", "--output_dir", ...) and
  `path`, for a file where a folder should be and for an unwritable or full location.
  """
  path = os.path.abspath(os.fspath(path))
  attempts = 0
  while True:
    attempts += 1
    missing = missing_folders(path)
    folder = os.path.dirname(missing[-1]) if missing else path  # the nearest that exists
    if not os.path.isdir(folder):
      where = "" if folder == path else f": {folder}"
      kind = "a file" if os.path.exists(folder) else "a broken link"
      raise error(f"{what} {path}{where} is {kind}, not a folder; give a folder path.")
    made = []  # the folders this check made, shallowest first
    try:
      if make_missing and folder != path:
        for name in os.path.relpath(path, folder).split(os.sep):
          child = os.path.join(folder, name)
          try:
            os.mkdir(child)
          except FileExistsError:  # made by another process meanwhile: not ours to remove
            pass
          else:
            made.append(child)
          folder = child
      _write_probe(folder)
      return path
    except OSError as e:
      if isinstance(e, FileNotFoundError) and attempts < 3:
        continue  # another process removed a folder under the check: look again
      where = "" if folder == path else f" in {folder}"
      raise error(f"{what} {path} is not writable ({e.strerror or e}{where}); choose a folder "
                  "you can write to, on a disk with free space.") from None
    finally:
      for created in reversed(made):
        try:
          os.rmdir(created)
        except OSError:
          break


def missing_folders(path) -> list[str]:
  """The folders of `path` (absolute) that do not exist yet, deepest first: `path` itself,
  then its missing ancestors; [] when it exists. What making `path` would create."""
  folder, out = os.path.abspath(os.fspath(path)), []
  while not os.path.lexists(folder) and os.path.dirname(folder) != folder:
    out.append(folder)
    folder = os.path.dirname(folder)
  return out


def remove_made_folders(made: list[str]) -> None:
  """Undoes the folders a run made (`missing_folders` before it) where they hold no file:
  the empty folders under the deepest, deepest first, then each made folder while empty. A
  folder holding anything stays, and so does everything that was there before."""
  if not made or os.path.islink(made[0]) or not os.path.isdir(made[0]):
    return
  inner = sorted(os.walk(made[0]), key=lambda entry: -entry[0].count(os.sep))
  for folder in [f for f, _, _ in inner] + made[1:]:
    try:
      os.rmdir(folder)  # only an empty folder is removed
    except OSError:
      pass


def decode_text(data: bytes, path: str, error: type[Exception] = FlanjaxError,
                fix: str = "save the file as UTF-8 text") -> str:
  """A file's bytes as text: UTF-8, a leading byte-order mark (as Excel and Notepad write it)
  dropped. A byte that is not UTF-8 raises `error` naming path:line and `fix`."""
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = data.count(b"\n", 0, e.start) + 1
    raise error(f"{path}:{line}: byte {data[e.start]:#04x} is not UTF-8; {fix}.") from None


def _json_type(value) -> str:
  if value is None:
    return "null"
  if isinstance(value, bool):
    return "boolean"
  if isinstance(value, (int, float)):
    return "number"
  return "string" if isinstance(value, str) else type(value).__name__


def iter_jsonl(path: str, error: type[Exception] = ValueError, object_hint: str = "", *,
               text: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
  """Yields (line number, row) of a JSONL file's non-blank lines; every row must be a JSON object.

  Reads the local file `path` (`decode_text`: UTF-8, a byte-order mark dropped), or parses
  `text`, its content when the caller has read it already (e.g. through tf.io.gfile for gs://).
  A bad line raises `error` naming path:line; `object_hint` ends the message for a line that is
  not an object (e.g. " with 'inputs'").
  """
  if text is None:
    with open(path, "rb") as f:
      text = decode_text(f.read(), path, error)
  for n, line in enumerate(io.StringIO(text, newline=""), 1):  # the lines open() would give
    line = line.strip()
    if not line:
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise error(f"{path}:{n}: not valid JSON ({e}).") from None
    if not isinstance(row, dict):
      raise error(f"{path}:{n}: a {_json_type(row)}, not a JSON object; write one JSON object "
                  f"per line{object_hint}.")
    yield n, row
