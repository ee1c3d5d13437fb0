"""The one exception type for mistakes a user can fix (bad flags, files, names), and `summary`,
which shortens any exception to a clause of such a message."""
from __future__ import annotations

import re

# What tensorstore appends to an error's message: the spec of the array and the source location.
_TS_ANNOTATION = re.compile(r"\s*\[(tensorstore_spec|source locations)=.*$")


class FlanjaxError(ValueError):
  """A user-facing error: the CLI prints its message on one line, without a stack trace.

  Messages name the offending thing and how to fix it (and the closest valid names).
  """


def summary(err: BaseException, limit: int = 240) -> str:
  """An exception's type and the first line of its message, at most `limit` characters (the
  start and the end of a longer one: Orbax's and tensorstore's errors say what failed last),
  without tensorstore's spec / source location appendix. A FlanjaxError's message is already a
  sentence for the user: it is not prefixed with the type."""
  text = str(err).strip().splitlines()[0] if str(err).strip() else ""
  text = _TS_ANNOTATION.sub("", text)
  if not isinstance(err, FlanjaxError) or not text:
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
  if len(text) <= limit:
    return text
  tail = limit // 2
  return text[:limit - tail - 5] + " ... " + text[-tail:]
