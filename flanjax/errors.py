"""The one exception type for mistakes a user can fix (bad flags, files, names)."""


class FlanjaxError(ValueError):
  """A user-facing error: the CLI prints its message on one line, without a stack trace.

  Messages name the offending thing and how to fix it (and the closest valid names).
  """
