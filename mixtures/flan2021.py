"""Mixtures of the FLAN 2021 collection (tasks in `flanjax.tasks.flan2021`).

- `flan2021`: every task with a train split, examples-proportional with cap 3,000 (FLAN 2021:
  rate = min(train examples, 3000), train splits already capped at 30k). The evaluation-only
  tasks (WSC273 and the 16 translation direction tasks) have no train split and stay out.
- `flan2021_without_<cluster>`: the training mixture for evaluating <cluster> zero-shot: all
  training tasks except those of the held-out clusters `heldout_clusters(<cluster>)`, which
  follow FLAN's overlap rules (FLAN's `task_splits.generate_inter_cluster_splits`): NLI and
  paraphrase are held out together, reading comprehension with commonsense leaves training
  whenever reading comprehension or commonsense is held out, and holding it out removes both of
  them too.
- `flan2021_heldout_<cluster>`: the evaluation mixture: the cluster's tasks (including
  evaluation-only ones such as WSC273), equal rates; evaluate it on split "validation"
  (`flanjax.tasks.flan2021.HELDOUT_EVAL_SPLIT`), the split the FLAN paper reports. For
  translation these are the 16 direction tasks (`flan2021_<key>_en_to_<lang>`,
  `flan2021_<key>_<lang>_to_en`: BLEU per direction, as FLAN reports it) in place of the 8
  datasets' tasks, whose evaluation mixes both directions (`flan2021.eval_task_names`).

- `flan2021_paper_<cluster>`: the datasets the FLAN paper compares with GPT-3 (25 in 7
  clusters: its Figure 1 and Table 2; `PAPER_EVAL`), equal rates: a cluster score comparable
  with the paper's, where `flan2021_heldout_<cluster>` averages every task of the cluster (e.g.
  MNLI's two and QNLI, SNLI, WNLI beside ANLI, CB and RTE).

Cluster keys: nli, commonsense, sentiment, paraphrase, closed_book_qa, struct_to_text,
translation, reading_comprehension, reading_comprehension_with_commonsense, coreference, misc,
summarization.
"""
from __future__ import annotations

import difflib

from flanjax.tasks import flan2021

from flanjax import mixing

CLUSTERS = flan2021.CLUSTERS
CAP = 3000
NAME = "flan2021"

# Held out together: evaluating one member removes all of them from training.
_HELD_OUT_TOGETHER = ({"nli", "paraphrase"},)
# Child cluster -> parents: the child leaves training whenever a parent is held out.
_CHILD_OF = {"reading_comprehension_with_commonsense": {"reading_comprehension", "commonsense"}}


def _check_cluster(cluster: str) -> None:
  if cluster not in CLUSTERS:
    close = difflib.get_close_matches(cluster, CLUSTERS, n=3)
    raise ValueError(f"Unknown FLAN 2021 cluster {cluster!r}; valid: {', '.join(CLUSTERS)}."
                     + (f" Closest: {', '.join(close)}." if close else ""))


def heldout_clusters(cluster: str) -> list[str]:
  """Clusters removed from training when `cluster` is evaluated zero-shot (FLAN's rules)."""
  _check_cluster(cluster)
  out = {cluster}
  for group in _HELD_OUT_TOGETHER:
    if cluster in group:
      out |= group
  for child, parents in _CHILD_OF.items():
    if out & parents:
      out.add(child)
    if cluster == child:  # FLAN holds out both parents for it (their tasks are its near kin)
      out |= parents
  return [c for c in CLUSTERS if c in out]


def train_tasks(exclude_clusters=()) -> list[str]:
  """Names of the catalog tasks with a train split, outside `exclude_clusters`."""
  excluded = set(exclude_clusters)
  return [s.name for s in flan2021.SPECS if s.has_train and s.cluster not in excluded]


def eval_tasks(cluster: str) -> list[str]:
  """Names of the cluster's held-out evaluation tasks (all of them have the evaluation split):
  its tasks, a translation dataset's task replaced by its two direction tasks."""
  _check_cluster(cluster)
  return flan2021.eval_task_names(cluster)


# The FLAN paper's zero-shot comparison with GPT-3: 25 datasets in 7 clusters (NLI, reading
# comprehension and closed-book QA as listed in its Figure 1; translation as 6 directions).
PAPER_EVAL = {
    "nli": ["anli_r1", "anli_r2", "anli_r3", "cb", "rte"],
    "reading_comprehension": ["bool_q", "multirc", "openbookqa"],
    "closed_book_qa": ["arc_easy", "arc_challenge", "natural_questions", "trivia_qa"],
    "commonsense": ["copa", "hellaswag", "piqa", "story_cloze"],
    "coreference": ["winogrande", "wsc273"],
    "reading_comprehension_with_commonsense": ["record"],
    "translation": ["wmt14_enfr_en_to_fr", "wmt14_enfr_fr_to_en", "wmt16_translate_deen_en_to_de",
                    "wmt16_translate_deen_de_to_en", "wmt16_translate_roen_en_to_ro",
                    "wmt16_translate_roen_ro_to_en"],
}


def paper_eval_tasks(cluster: str) -> list[str]:
  """The cluster's datasets in the FLAN paper's comparison with GPT-3 (`PAPER_EVAL`)."""
  _check_cluster(cluster)
  if cluster not in PAPER_EVAL:
    raise ValueError(f"The FLAN paper compares no {cluster!r} datasets with GPT-3; clusters "
                     f"with a paper mixture: {', '.join(PAPER_EVAL)}.")
  return [flan2021.PREFIX + key for key in PAPER_EVAL[cluster]]


def register_all() -> list[str]:
  """Registers `flan2021` and the per-cluster mixtures; returns their names."""
  rate = mixing.examples_rate(CAP)
  names = [NAME]
  mixing.register_mixture(NAME, train_tasks(), rate=rate)
  for c in CLUSTERS:
    without, heldout = f"{NAME}_without_{c}", f"{NAME}_heldout_{c}"
    mixing.register_mixture(without, train_tasks(heldout_clusters(c)), rate=rate)
    mixing.register_mixture(heldout, eval_tasks(c), rate=mixing.equal_rate())
    names += [without, heldout]
    if c in PAPER_EVAL:
      paper = f"{NAME}_paper_{c}"
      mixing.register_mixture(paper, paper_eval_tasks(c), rate=mixing.equal_rate())
      names.append(paper)
  return names


MIXTURES = register_all()
