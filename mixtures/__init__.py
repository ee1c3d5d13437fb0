"""Registered mixtures: importing this registers the tasks and the offline / FLAN 2021 mixtures."""
import flanjax.tasks  # noqa: F401  (the tasks the mixtures refer to)
from flanjax.mixtures import flan2021, offline  # noqa: F401
