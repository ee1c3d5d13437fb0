"""The flanjax task catalog: importing this registers the offline and FLAN 2021 tasks."""
from flanjax.tasks import flan2021, offline  # noqa: F401
