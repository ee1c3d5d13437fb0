"""The one exception type for mistakes a user can fix (bad flags, files, names), `summary`,
which shortens any exception to a clause of such a message, and `first_line`, the line of a
message that summarisers start from (`pipeline.first_line` cleans TensorFlow's with it)."""
from __future__ import annotations

import re

# What tensorstore appends to an error's message: the spec of the array and the source location.
_TS_ANNOTATION = re.compile(r"\s*\[(tensorstore_spec|source locations)=.*$")


class FlanjaxError(ValueError):
  """A user-facing error: the CLI prints its message on one line, without a stack trace.

  Messages name the offending thing and how to fix it (and the closest valid names).
  """


def first_line(message) -> str:
  """The first line of `message` (any object: str() of it) that is not blank, without leading
  whitespace; "" for a blank message."""
  text = str(message).strip()
  return text.splitlines()[0] if text else ""


def summary(err: BaseException, limit: int = 240) -> str:
  """An exception's type and the first line of its message, at most `limit` characters (the
  start and the end of a longer one: Orbax's and tensorstore's errors say what failed last),
  without tensorstore's spec / source location appendix. A FlanjaxError's message is already a
  sentence for the user: it is not prefixed with the type."""
  text = _TS_ANNOTATION.sub("", first_line(err))
  if not isinstance(err, FlanjaxError) or not text:
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
  if len(text) <= limit:
    return text
  tail = limit // 2
  return text[:limit - tail - 5] + " ... " + text[-tail:]
