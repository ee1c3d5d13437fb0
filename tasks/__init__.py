"""The flanjax task catalog: importing this registers the offline and FLAN 2021 tasks."""
import importlib
import logging

for _module in ("offline", "flan2021"):
  try:
    importlib.import_module(f"{__name__}.{_module}")
  except ModuleNotFoundError as _e:
    if _e.name != f"{__name__}.{_module}":
      raise
    logging.getLogger(__name__).debug("flanjax.tasks.%s is not available", _module)
