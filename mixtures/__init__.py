"""Registered mixtures: importing this registers the tasks and the offline / FLAN 2021 mixtures."""
import importlib
import logging

import flanjax.tasks  # noqa: F401  (the tasks the mixtures refer to)

for _module in ("offline", "flan2021"):
  try:
    importlib.import_module(f"{__name__}.{_module}")
  except ModuleNotFoundError as _e:
    if _e.name != f"{__name__}.{_module}":
      raise
    logging.getLogger(__name__).debug("flanjax.mixtures.%s is not available", _module)
