"""Mixtures of the offline collection.

- `offline`: every offline task, examples-proportional with cap 3,000.
- `offline_without_<cluster>`: training mixture without that cluster's tasks.
- `offline_heldout_<cluster>`: the held-out cluster's tasks (evaluate on split "validation").
"""
from flanjax.tasks import offline as offline_tasks

from flanjax import mixing, offline

CLUSTERS = sorted(set(offline.CLUSTERS.values()))


def tasks_in(cluster: str) -> list[str]:
  return [offline_tasks.task_name(f) for f in offline.FAMILIES if offline.CLUSTERS[f] == cluster]


def register_all():
  all_tasks = [offline_tasks.task_name(f) for f in offline.FAMILIES]
  mixing.register_mixture("offline", all_tasks, rate=mixing.examples_rate(3000))
  for c in CLUSTERS:
    held = set(tasks_in(c))
    mixing.register_mixture(f"offline_without_{c}", [t for t in all_tasks if t not in held],
                            rate=mixing.examples_rate(3000))
    mixing.register_mixture(f"offline_heldout_{c}", sorted(held), rate=mixing.equal_rate())


register_all()
