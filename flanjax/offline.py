"""The built-in offline instruction collection: synthetic task families, no download.

Six task families in six clusters, generated deterministically (Python `random.Random` with
fixed seeds), each learnable by a tiny T5 in a few hundred CPU steps:

| family         | cluster        | fields                                   | answer                  |
|----------------|----------------|------------------------------------------|-------------------------|
| sentiment      | sentiment      | text                                     | option (neg/pos)        |
| nli            | nli            | premise, hypothesis                      | option (yes/maybe/no)   |
| paraphrase     | paraphrase     | sentence1, sentence2                     | option (no/yes)         |
| topic          | topic          | text                                     | option (4 topics)       |
| arithmetic     | math           | question, a, b, op                       | number (free text)      |
| struct_to_text | struct_to_text | meaning_representation, name, food, area | sentence (ROUGE)        |

The data goes through a local TFDS builder (`FlanjaxOffline`, one BuilderConfig per family,
name "flanjax_offline/<family>") prepared into `data_dir()` ($FLANJAX_DATA_DIR, else
~/.cache/flanjax/tfds) on first use, so the offline tasks run the same TfdsDataSource path as
the real catalog. `prepare()` / `python -m flanjax.offline [--data_dir D]` prepare it explicitly.
Option families emit `options` (the choices) and `answer` (the correct option text).
"""
from __future__ import annotations

import os
import random
import sys
import zlib
from collections.abc import Iterator

FAMILIES = ("sentiment", "nli", "paraphrase", "topic", "arithmetic", "struct_to_text")
CLUSTERS = {"sentiment": "sentiment", "nli": "nli", "paraphrase": "paraphrase",
            "topic": "topic", "arithmetic": "math", "struct_to_text": "struct_to_text"}
SPLIT_SIZES = {"train": 3000, "validation": 200, "test": 200}
_SPLIT_SEEDS = {"train": 1, "validation": 2, "test": 3}
VERSION = "1.1.0"  # 1.1.0: the splits' inputs are disjoint (`split_of`)
FIELDS = {
    "sentiment": ("text", "options", "answer"),
    "nli": ("premise", "hypothesis", "options", "answer"),
    "paraphrase": ("sentence1", "sentence2", "options", "answer"),
    "topic": ("text", "options", "answer"),
    "arithmetic": ("question", "a", "b", "op", "answer"),
    "struct_to_text": ("meaning_representation", "name", "food", "area", "answer"),
}
OPTIONS = {
    "sentiment": ("negative", "positive"),
    "nli": ("yes", "it is not possible to tell", "no"),
    "paraphrase": ("no", "yes"),
    "topic": ("sports", "science", "business", "world"),
}


def data_dir() -> str:
  """Where the offline TFDS data lives: $FLANJAX_DATA_DIR, else ~/.cache/flanjax/tfds (under
  $XDG_CACHE_HOME when set, as the compilation cache)."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.environ.get("FLANJAX_DATA_DIR") or os.path.join(base, "flanjax", "tfds")


# ------------------------------------------------------------------------------------------
# Generators (pure Python).

_POS_ADJ = ["delicious", "wonderful", "friendly", "excellent", "lovely", "fantastic", "great",
            "charming", "superb", "pleasant", "fresh", "cozy"]
_NEG_ADJ = ["awful", "terrible", "rude", "bland", "dirty", "horrible", "poor", "stale",
            "disappointing", "noisy", "cold", "slow"]
_THINGS = ["pasta", "staff", "service", "soup", "room", "coffee", "music", "view", "bread",
           "waiter", "dessert", "hotel", "movie", "book", "phone", "game"]
_OPENERS = ["I think", "Honestly,", "In my opinion", "We found that", "Overall,", "To be fair,",
            "My friend said", "Sadly or not,", ""]
_NEG_WORDS = ["not", "never"]

_NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
          "Kira", "Liam", "Mona", "Nils", "Olga", "Pedro"]
_ANIMALS = ["cat", "dog", "horse", "parrot", "rabbit", "goat", "fox", "owl"]
_COLORS = ["red", "black", "white", "brown", "grey", "small", "old", "young"]
_ACTIONS = ["sleeping", "running", "eating", "singing", "jumping", "reading", "swimming",
            "waiting"]
_PLACES = ["garden", "kitchen", "park", "library", "station", "forest", "market", "river"]

_TOPIC_WORDS = {
    "sports": ["team", "goal", "match", "coach", "league", "players", "tournament", "score",
               "stadium", "season", "championship", "referee"],
    "science": ["researchers", "experiment", "laboratory", "molecule", "telescope", "study",
                "cells", "physics", "planet", "data", "climate", "species"],
    "business": ["company", "shares", "market", "profit", "investors", "bank", "prices",
                 "startup", "revenue", "merger", "economy", "sales"],
    "world": ["government", "minister", "election", "president", "capital", "border",
              "parliament", "protest", "treaty", "embassy", "refugees", "summit"],
}
_TOPIC_FRAMES = ["The {0} and the {1} made headlines on {d}.",
                 "On {d}, reports about the {0} mentioned the {1}.",
                 "A new story about the {0} surprised the {1}.",
                 "Everyone is talking about the {0}, the {1} and the {2}.",
                 "The {0} said on {d} that the {1} would change.",
                 "Critics of the {0} questioned the {1}."]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

_REST_NAMES = ["The Blue Spoon", "Golden Dragon", "Cafe Rouge", "The Olive Tree", "Green Table",
               "Little Italy", "The Old Mill", "Sakura House", "The Red Lion", "Casa Verde",
               "Silver Fork", "The Lantern", "The Copper Pot", "Jade Garden", "Bistro Nord",
               "The Wild Fig", "Harbour Grill", "Taj Corner", "The Brass Bell", "El Sol",
               "The Salt Cellar", "Maple House", "The White Horse", "Villa Rosa"]
_FOODS = ["Italian", "Chinese", "French", "Indian", "Japanese", "Mexican", "English", "Greek"]
_AREAS = ["riverside", "city centre", "harbour", "old town", "university district", "suburbs"]
_PRICES = ["cheap", "moderate", "expensive"]


def _a(word: str) -> str:
  """The indefinite article for `word` ("an owl", "a cat")."""
  return "an" if word[0].lower() in "aeiou" else "a"


def _sentiment(rng: random.Random) -> dict:
  positive = rng.random() < 0.5
  n = rng.choice([1, 2, 2, 3])
  clauses = []
  for _ in range(n):
    # Mostly consistent clauses; negation flips the adjective's polarity.
    negate = rng.random() < 0.2
    good = positive != negate
    adj = rng.choice(_POS_ADJ if good else _NEG_ADJ)
    thing = rng.choice(_THINGS)
    verb = "was" if not negate else f"was {rng.choice(_NEG_WORDS)}"
    clauses.append(f"the {thing} {verb} {adj}")
  opener = rng.choice(_OPENERS)
  text = " and ".join(clauses)
  text = (f"{opener} {text}" if opener else text[0].upper() + text[1:]) + "."
  return {"text": text, "options": list(OPTIONS["sentiment"]),
          "answer": "positive" if positive else "negative"}


def _nli(rng: random.Random) -> dict:
  name, animal, color = rng.choice(_NAMES), rng.choice(_ANIMALS), rng.choice(_COLORS)
  action, place = rng.choice(_ACTIONS), rng.choice(_PLACES)
  premise = f"{name}'s {color} {animal} is {action} in the {place}."
  kind = rng.randrange(3)
  if kind == 0:  # entailment: drop a detail or restate.
    hypothesis = rng.choice([f"{name}'s {animal} is {action}.",
                             f"{_a(animal).capitalize()} {animal} is in the {place}.",
                             f"An animal is {action} in the {place}.",
                             f"{name} has {_a(animal)} {animal}."])
  elif kind == 1:  # neutral: add a detail the premise does not give.
    extra = rng.choice(["because it is hungry", "with its friend", "for the first time",
                        "all day long", "after the rain"])
    hypothesis = rng.choice([f"{name}'s {animal} is {action} {extra}.",
                             f"{name} is watching the {animal} in the {place}.",
                             f"The {animal} is {action} {extra}."])
  else:  # contradiction: change the action or place, or negate.
    other_action = rng.choice([a for a in _ACTIONS if a != action])
    other_place = rng.choice([p for p in _PLACES if p != place])
    hypothesis = rng.choice([f"{name}'s {animal} is not {action}.",
                             f"{name}'s {color} {animal} is {other_action} in the {place}.",
                             f"{name}'s {animal} is {action} in the {other_place}.",
                             f"{name} does not have {_a(animal)} {animal}."])
  return {"premise": premise, "hypothesis": hypothesis, "options": list(OPTIONS["nli"]),
          "answer": OPTIONS["nli"][kind]}


def _paraphrase(rng: random.Random) -> dict:
  a, b = rng.sample(_NAMES, 2)
  thing = rng.choice(_THINGS)
  day = rng.choice(_DAYS)
  s1 = rng.choice([f"{a} gave the {thing} to {b} on {day}.",
                   f"On {day}, {a} gave {b} the {thing}."])
  same = rng.random() < 0.5
  if same:
    s2 = rng.choice([f"{b} received the {thing} from {a} on {day}.",
                     f"The {thing} was given to {b} by {a} on {day}.",
                     f"On {day}, {b} got the {thing} from {a}."])
  else:
    change = rng.randrange(3)
    if change == 0:
      s2 = f"{a} received the {thing} from {b} on {day}."
    elif change == 1:
      other = rng.choice([d for d in _DAYS if d != day])
      s2 = f"The {thing} was given to {b} by {a} on {other}."
    else:
      other = rng.choice([t for t in _THINGS if t != thing])
      s2 = f"On {day}, {b} got the {other} from {a}."
  return {"sentence1": s1, "sentence2": s2, "options": list(OPTIONS["paraphrase"]),
          "answer": "yes" if same else "no"}


def _topic(rng: random.Random) -> dict:
  topic = rng.choice(OPTIONS["topic"])
  words = rng.sample(_TOPIC_WORDS[topic], 3)
  text = rng.choice(_TOPIC_FRAMES).format(*words, d=rng.choice(_DAYS))
  return {"text": text, "options": list(OPTIONS["topic"]), "answer": topic}


def _arithmetic(rng: random.Random) -> dict:
  op = rng.choice(["plus", "minus"])
  a, b = rng.randrange(0, 50), rng.randrange(0, 50)
  if op == "minus" and b > a:
    a, b = b, a
  result = a + b if op == "plus" else a - b
  return {"question": f"What is {a} {op} {b}?", "a": str(a), "b": str(b), "op": op,
          "answer": str(result)}


def _struct_to_text(rng: random.Random) -> dict:
  name, food, area = rng.choice(_REST_NAMES), rng.choice(_FOODS), rng.choice(_AREAS)
  price = rng.choice(_PRICES)
  article = _a(price)
  mr = f"name[{name}], food[{food}], area[{area}], price[{price}]"
  answer = rng.choice([
      f"{name} is {article} {price} {food} restaurant in the {area}.",
      f"In the {area} there is {article} {price} {food} restaurant called {name}.",
      f"{name} serves {food} food at {price} prices in the {area}.",
  ])
  return {"meaning_representation": mr, "name": name, "food": food, "area": area,
          "answer": answer}


_GENERATORS = {"sentiment": _sentiment, "nli": _nli, "paraphrase": _paraphrase,
               "topic": _topic, "arithmetic": _arithmetic, "struct_to_text": _struct_to_text}


def _key(family: str, ex: dict) -> tuple:
  """What an example gives the model: its fields but the options and the answer."""
  return tuple(ex[f] for f in FIELDS[family] if f not in ("options", "answer"))


def split_of(family: str, ex: dict) -> str:
  """The one split an example's inputs belong to: a fixed hash of `_key` sends a tenth of the
  input space to validation, a tenth to test and the rest to train, so no evaluation input is
  ever a training input (nor a validation input a test one)."""
  bucket = zlib.crc32(repr(_key(family, ex)).encode()) % 10
  return "validation" if bucket == 0 else "test" if bucket == 1 else "train"


def generate(family: str, split: str) -> list[dict]:
  """The examples of one family and split (deterministic). Each split draws only inputs of its
  own part of the input space (`split_of`); the evaluation splits hold each input once."""
  if family not in _GENERATORS:
    import difflib
    raise ValueError(f"Unknown offline family {family!r}; valid: {', '.join(FAMILIES)}"
                     f" (closest: {difflib.get_close_matches(family, FAMILIES)}).")
  if split not in SPLIT_SIZES:
    raise ValueError(f"Unknown split {split!r}; valid: {', '.join(SPLIT_SIZES)}.")
  rng = random.Random(f"flanjax-offline/{family}/{_SPLIT_SEEDS[split]}")
  out, seen = [], set()
  for _ in range(1000 * SPLIT_SIZES[split]):
    ex = _GENERATORS[family](rng)
    if split_of(family, ex) != split:
      continue
    if split != "train":
      k = _key(family, ex)
      if k in seen:
        continue
      seen.add(k)
    out.append(ex)
    if len(out) == SPLIT_SIZES[split]:
      return out
  raise AssertionError(f"offline family {family!r} has too few distinct {split} inputs for "
                       f"{SPLIT_SIZES[split]} examples; widen its generator.")


def corpus(max_lines: int = 40_000) -> list[str]:
  """Text for training the offline SentencePiece model: fields + rendered templates."""
  from flanjax import templates as tmpl
  from flanjax.tasks import offline as offline_tasks
  lines = []
  for family in FAMILIES:
    exs = generate(family, "train")
    temps = offline_tasks.TEMPLATES[family]
    for i, ex in enumerate(exs):
      t = temps[i % len(temps)]
      inputs, targets = tmpl.render(t, ex, with_options=i % 2 == 0)
      lines.append(inputs)
      lines.append(targets)
  lines.append("[Sentiment: flanjax_offline] [Nli: x] [Topic: x] [Math: x] [Struct_to_text: x]")
  return lines[:max_lines]


# ------------------------------------------------------------------------------------------
# The local TFDS builder.

_BUILDER_CLS = None


def builder_class():
  """The FlanjaxOffline TFDS builder class (defined on first use; registers 'flanjax_offline')."""
  global _BUILDER_CLS
  if _BUILDER_CLS is not None:
    return _BUILDER_CLS
  import tensorflow_datasets as tfds

  class FlanjaxOfflineConfig(tfds.core.BuilderConfig):
    pass

  class FlanjaxOffline(tfds.core.GeneratorBasedBuilder):
    """Synthetic instruction task families generated locally (no download)."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {"1.0.0": "Initial release.",
                     "1.1.0": "Disjoint inputs across splits; arithmetic to 49; 24 restaurants."}
    # Nothing is downloaded: no checksums file (and no code-path lookup, which needs the
    # optional importlib_resources package).
    url_infos = None
    _checksums_path = None
    BUILDER_CONFIGS = [FlanjaxOfflineConfig(name=f, description=f"Offline {f} family.")
                       for f in FAMILIES]

    def _info(self):
      family = self.builder_config.name
      import numpy as np
      feats = {}
      for f in FIELDS[family]:
        feats[f] = (tfds.features.Sequence(tfds.features.Text()) if f == "options"
                    else tfds.features.Text())
      feats["idx"] = tfds.features.Scalar(dtype=np.int32)
      return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(feats),
                                            homepage="https://github.com/flanjax/flanjax")

    def _log_download_bytes(self):  # TFDS says "Downloading and preparing dataset"
      print(f"flanjax: generating the offline collection's {self.builder_config.name!r} family "
            f"in {self.data_dir} (locally; nothing is downloaded)", file=sys.stderr, flush=True)

    def _log_download_done(self):
      pass

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(split) for split in SPLIT_SIZES}

    def _generate_examples(self, split) -> Iterator:
      family = self.builder_config.name
      for i, ex in enumerate(generate(family, split)):
        yield i, dict(ex, idx=i)

  _BUILDER_CLS = FlanjaxOffline
  return FlanjaxOffline


def is_prepared(family: str, data_dir_: str | None = None) -> bool:
  builder = builder_class()(config=family, data_dir=data_dir_ or data_dir())
  return builder.is_prepared()


def prepare(families=FAMILIES, data_dir_: str | None = None) -> str:
  """Generates the offline TFDS datasets into data_dir (idempotent). Returns the data dir."""
  from tensorflow_datasets.core.utils import tqdm_utils
  d = data_dir_ or data_dir()
  cls = builder_class()
  for family in families:
    builder = cls(config=family, data_dir=d)
    if not builder.is_prepared():
      was_active = tqdm_utils._active  # noqa: SLF001
      tqdm_utils.display_progress_bar(False)
      try:
        builder.download_and_prepare(download_config=_download_config())
      finally:
        tqdm_utils.display_progress_bar(was_active)
  return d


def _download_config():
  import tensorflow_datasets as tfds
  return tfds.download.DownloadConfig(try_download_gcs=False, verify_ssl=False)


if __name__ == "__main__":
  import argparse
  p = argparse.ArgumentParser(description="Prepare the flanjax offline TFDS collection.")
  p.add_argument("--data_dir", default=None)
  args = p.parse_args()
  print(prepare(data_dir_=args.data_dir))
