"""Writing files so that readers never see a half-written one."""
from __future__ import annotations

import os
import secrets
import stat


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
