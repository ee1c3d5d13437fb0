"""Registering instruction tasks: any TFDS dataset or local JSONL/CSV/TSV files + templates.

    from flanjax.registration import register_tfds_task
    from flanjax.templates import Template
    register_tfds_task(
        "my_rte", "glue/rte:2.0.0", cluster="nli", metric="accuracy",
        splits={"train": "train", "validation": "validation"},
        preprocessor=lambda ex: {"premise": ex["sentence1"], "hypothesis": ex["sentence2"],
                                 "answer": tf.gather(["yes", "no"], ex["label"])},
        options=["yes", "no"],
        templates=[Template("{premise}\\nDoes this mean that \\"{hypothesis}\\"?{options_}",
                            "{answer}"), ...])

Each call registers a seqio Task `name` (instruction mode, zero-shot) with features `inputs` /
`targets` (EOS appended) and records `TASK_INFO[name]`. Every task's examples also carry
`inputs_pretokenized`, `targets_pretokenized`, `options` (tf.string [n], empty when the task
has none), `answer_index` (int32, -1 without options) and `references` (tf.string [n]: all gold
answers / references when the preprocessor emits a `references` list, else empty), so any tasks
can be mixed. Eval targets of a task with references are the list (multi-reference squad /
rouge / bleu in flanjax.metrics).

Variants (`task_variant(name, mode=..., num_shots=..., options=..., scoring=...)`) are
registered on demand as "<name>__<suffix>": modes `no_template` / `dataset_name`, k-shot, no
OPTIONS block, and rank classification.

Rank classification (chosen design): the `scoring=True` variant is a seqio Task with one row
per (example, option): `inputs` = the rendered prompt, `targets` = the option text,
`idx` = [example_index, option_index] and `is_correct` (the answer's option and every option
equal to one of the example's `references`, e.g. ReCoRD's spellings of the entity). Its
postprocess_fn turns targets into `(tuple(idx), is_correct)` and its score metric is
`flanjax.metrics.rank_classification(targets, scores)`: the option with the highest
log-likelihood per example is the prediction, right when it is any correct option.
`rank_classification_examples(example)` does the same expansion in Python.

The split map caps training at `max_train_examples` (TFDS slice "train[:N]") and eval splits
at `max_eval_examples`. A TFDS dataset that is not prepared raises `DatasetNotPreparedError`
naming the dataset, the data dir searched and the command that prepares it.

Bad data is one FlanjaxError, never silently changed: a file task's split is checked when first
read (UTF-8, a byte-order mark dropped; every JSONL row an object, every CSV/TSV row the
header's fields; the fields are the keys every row of every file has, and a key the task reads
that a row or file lacks is an error naming file:line and the key, other keys are ignored),
and so is its preprocessor (traced over the file's fields: a field it reads that the file
lacks, no `answer` for an option task, or a template field it does not emit names the task,
file and fields).
A vocabulary whose SentencePiece file is missing or unreadable (e.g. the default T5 one on GCS,
offline) is reported before tf.data traces anything, with how to point flanjax at a local copy.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence

from flanjax import preprocessors as pp
from flanjax import templates as tmpl
from flanjax.errors import FlanjaxError
from flanjax.files import decode_text, iter_jsonl

log = logging.getLogger(__name__)

FILE_FORMATS = ("jsonl", "csv", "tsv")
OPTIONS_SEP = "\x1f"  # joins a file's JSON list into one string column (split again per row)


class DatasetNotPreparedError(FlanjaxError):
  """A TFDS dataset whose data is not in the data dir (the message says how to prepare it).

  `tfds_name` / `data_dir`: the dataset and the data dir searched, where the data is missing
  (None for a wrong version or an unknown dataset)."""

  def __init__(self, message: str, tfds_name: str | None = None, data_dir: str | None = None):
    super().__init__(message)
    self.tfds_name, self.data_dir = tfds_name, data_dir


class UnknownNameError(FlanjaxError, KeyError):
  """An unknown task / mixture / variant name (a KeyError too; the message names the closest)."""

  def __str__(self):  # KeyError would quote the message
    return str(self.args[0]) if self.args else ""


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  """What flanjax knows about a registered task (beyond the seqio Task)."""

  cluster: str
  metric: str
  has_options: bool
  dataset: str
  name: str = ""
  templates: tuple = ()
  splits: tuple = ()  # ((seqio split, source split), ...)
  num_train_examples: int | None = None  # static size hint (when the data is not prepared)
  max_train_examples: int = 30_000
  base: str = ""  # the base task of a variant ("" for a base task)
  mode: str = "instruction"
  num_shots: int = 0
  scoring: bool = False
  template: int | None = None  # a variant rendering every example with templates[template]
  options_block: bool = True  # False: a variant without the OPTIONS block
  # The task's headline metric, for per-cluster means and reports ("": its metric kind's, see
  # flanjax.metrics.PRIMARY_METRIC), e.g. "em" for a closed-book QA task of kind "squad".
  headline: str = ""
  # Metrics from the rank-classification winners beside rank_accuracy (one of
  # flanjax.metrics.RANK_METRICS, "" for none), e.g. MultiRC's F1a and per-question EM.
  rank_metrics: str = ""


# A split read only for k-shot exemplars: an evaluation-only task (no `train` split, so no
# training mixture takes it) whose exemplars come from training data, e.g. flan2021's
# translation-direction tasks, whose exemplars are their dataset's train pairs.
EXEMPLAR_SPLIT = "exemplars"


def exemplar_split(splits) -> str | None:
  """The split k-shot exemplars are drawn from: `train`, else EXEMPLAR_SPLIT, else None."""
  return next((s for s in ("train", EXEMPLAR_SPLIT) if s in splits), None)


TASK_INFO: dict[str, TaskInfo] = {}
_BUILDERS: dict[str, Callable[..., object]] = {}  # base name -> fn(**variant) -> seqio.Task


def _close(name: str, names) -> str:
  c = difflib.get_close_matches(name, list(names), n=3)
  return f" Closest: {', '.join(c)}." if c else ""


def get_task_info(name: str) -> TaskInfo:
  if name not in TASK_INFO:
    raise UnknownNameError(f"Unknown task {name!r}.{_close(name, TASK_INFO)}")
  return TASK_INFO[name]


# ------------------------------------------------------------------------------------------
# Metrics: flanjax.metrics is imported lazily, by name.


def _predict_metric(name: str):
  def fn(targets, predictions):
    from flanjax import metrics
    return getattr(metrics, name)(targets, predictions)
  fn.__name__ = name
  return fn


def _score_metric(name: str):
  def fn(targets, scores):
    from flanjax import metrics
    return getattr(metrics, name)(targets, scores)
  fn.__name__ = name
  return fn


def _scoring_postprocess(output, example=None, is_target=False):
  if is_target and example is not None:
    return (tuple(int(i) for i in example["idx"]), bool(example["is_correct"]))
  return output


# ------------------------------------------------------------------------------------------
# Sources.


def _prepare_command(tfds_name: str, data_dir: str | None, manual: bool = False) -> str:
  d = f" --data_dir={data_dir}" if data_dir else ""
  m = " --manual_dir=/path/to/downloaded/files" if manual else ""
  return f"tfds build {tfds_name.split(':')[0]}{d}{m}"


def _wmt_manual_files(tfds_name: str) -> list[tuple[str, str]] | None:
  """For a WMT builder config (`wmt16_translate/cs-en`): the (file, url) pairs its sub-datasets
  need downloaded by hand (TFDS's WmtTranslate says only "some of the wmt configs" need any:
  here cs-en's CzEng and ru-en's Yandex corpus); None for another builder."""
  try:
    import tensorflow_datasets as tfds
    from tensorflow_datasets.translate import wmt
    name = tfds_name.split(":")[0]
    if not issubclass(tfds.builder_cls(name.split("/")[0]), wmt.WmtTranslate) or "/" not in name:
      return None
    import tempfile
    # A builder object reads no data (a data dir that does not exist is fine); its `subsets`
    # are the sub-datasets of the config's language pair.
    builder = tfds.builder(name, data_dir=os.path.join(tempfile.gettempdir(), "flanjax-no-data"))
    source = builder.builder_config.language_pair[0]
    out = []
    for split_subsets in builder.subsets.values():
      for sub in split_subsets:
        ds = wmt.DATASET_MAP[sub]
        files = ds.get_manual_dl_files(source)
        if files:
          out += [(f, ds.get_url(source)[0]) for f in files]
    return list(dict.fromkeys(out))
  except Exception:  # noqa: BLE001 (TFDS internals moved: fall back to the builder's text)
    return None


def needs_manual_download(tfds_name: str) -> bool:
  """Whether preparing `tfds_name` needs files downloaded by hand (`tfds build --manual_dir`)."""
  return _manual_instructions(tfds_name) is not None


def _manual_instructions(tfds_name: str) -> str | None:
  """Where to get a manual-download dataset's files, in one line (None: not manual)."""
  import re
  wmt_files = _wmt_manual_files(tfds_name)
  if wmt_files is not None:
    if not wmt_files:
      return None
    urls = list(dict.fromkeys(u for _, u in wmt_files))
    files = [f for f, _ in wmt_files]
    return (f"get {', '.join(files[:3])}{' ...' if len(files) > 3 else ''} from "
            + " and ".join(urls[:2]))
  try:
    import tensorflow_datasets as tfds
    text = tfds.builder_cls(tfds_name.split(":")[0].split("/")[0]).MANUAL_DOWNLOAD_INSTRUCTIONS
  except Exception:  # unknown builder: the caller's error says so
    return None
  if not text:
    return None
  urls = list(dict.fromkeys(u.rstrip(".,)") for u in re.findall(r"https?://\S+", text)))
  if urls:
    return "get the files from " + " and ".join(urls[:2])
  line = " ".join(text.split())
  return line[:300] + ("..." if len(line) > 300 else "")


def not_prepared_message(tfds_name: str, data_dir: str | None, detail: str = "") -> str:
  """One-line explanation of an unprepared TFDS dataset: name, data dir, prepare command."""
  searched = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
      "~/tensorflow_datasets")
  manual = _manual_instructions(tfds_name)
  msg = (f"TFDS dataset {tfds_name!r} is not prepared in data_dir {searched!r}. ")
  if manual:
    msg += (f"It needs a manual download: {manual}, put them in a directory and prepare with: "
            f"{_prepare_command(tfds_name, data_dir, manual=True)}")
  else:
    msg += f"Prepare it with: {_prepare_command(tfds_name, data_dir)}"
  msg += " (or pass tfds_data_dir= / --tfds_data_dir= where it is prepared)."
  if detail:
    msg += f" [{detail}]"
  return msg


def unprepared_datasets(name: str, split: str) -> dict[str, DatasetNotPreparedError]:
  """{TFDS dataset: its not-prepared error} over the sub-tasks of task or mixture `name` that
  read `split` from a TFDS dataset whose data is missing. Builds each sub-task's TFDS source
  (metadata, no examples)."""
  import seqio
  missing: dict[str, DatasetNotPreparedError] = {}
  for task in seqio.get_subtasks(seqio.get_mixture_or_task(name)):
    source = task.source
    if not isinstance(source, seqio.TfdsDataSource) or split not in source.splits:
      continue
    try:
      source.get_dataset(split=split, shuffle=False)
    except DatasetNotPreparedError as e:
      if e.tfds_name is not None:
        missing.setdefault(e.tfds_name, e)
    except Exception:  # noqa: BLE001 (another problem: reported when the data is read)
      continue
  return missing


def _unprepared_error(what: str, missing: Mapping[str, DatasetNotPreparedError]
                      ) -> DatasetNotPreparedError:
  """One error for several unprepared datasets of `what` ("mixture 'm'"): the datasets, one
  `tfds build` command for all that need no manual download, and the manual ones apart."""
  first = next(iter(missing.values()))
  searched = first.data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
      "~/tensorflow_datasets")
  manual = {n: _manual_instructions(n) for n in missing}
  commands = {}
  for n, e in missing.items():
    if not manual[n]:
      commands.setdefault(e.data_dir, []).append(n.split(":")[0])
  where = (f"in data_dir {searched!r}" if len({e.data_dir for e in missing.values()}) == 1
           else "in their data_dirs")
  msg = (f"{len(missing)} TFDS datasets of {what} are not prepared {where}: "
         f"{', '.join(missing)}.")
  if commands:
    builds = "; ".join(
        "tfds build " + " ".join(names) + (f" --data_dir={d}" if d else "")
        for d, names in commands.items())
    msg += f" Prepare them with: {builds}."
  hand = [n for n in missing if manual[n]]
  if hand:
    msg += " These need files downloaded by hand first, then `tfds build NAME --manual_dir=DIR`: "
    msg += "; ".join(f"{n} ({manual[n]})" for n in hand) + "."
  msg += " (Or pass tfds_data_dir= / --tfds_data_dir= where they are prepared.)"
  return DatasetNotPreparedError(msg, tfds_name=first.tfds_name, data_dir=first.data_dir)


def unprepared_datasets_error(name: str, split: str,
                              first: DatasetNotPreparedError) -> DatasetNotPreparedError:
  """For a mixture one of whose TFDS datasets (`first`) is not prepared: one error naming every
  dataset of the mixture that is not prepared for `split`, with one `tfds build` command for all
  that need no manual download (a FLAN mixture reads 60-odd; one at a time is a rerun each).
  `first` itself for a task, or where it is the only one. Run only on that failure."""
  import seqio
  if first.tfds_name is None or name not in seqio.MixtureRegistry.names():
    return first
  missing = unprepared_datasets(name, split)
  return first if len(missing) <= 1 else _unprepared_error(f"mixture {name!r}", missing)


def check_prepared(requests: Sequence[tuple[str, str]]) -> None:
  """Raises one DatasetNotPreparedError naming every TFDS dataset that the (task or mixture,
  split) `requests` read and that is not prepared (a run that reads several, such as heldout's
  training and evaluation mixtures, checks them all before its first stage)."""
  missing: dict[str, DatasetNotPreparedError] = {}
  for name, split in requests:
    for n, e in unprepared_datasets(name, split).items():
      missing.setdefault(n, e)
  if len(missing) == 1:
    raise next(iter(missing.values()))
  if missing:
    names = [repr(n) for n, _ in requests]
    what = ("mixture " if len(names) == 1 else "mixtures ") + (
        names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])
    raise _unprepared_error(what, missing)


@contextlib.contextmanager
def naming_unprepared_datasets(name: str, split: str):
  """Context in which mixture `name`'s `split` is read: a DatasetNotPreparedError becomes
  `unprepared_datasets_error`'s, which names every dataset of the mixture not prepared."""
  try:
    yield
  except DatasetNotPreparedError as e:
    raise unprepared_datasets_error(name, split, e) from e


def capped_split(spec: str, cap: int, split_infos) -> str:
  """The TFDS split `spec` ("train", or a slice such as "train[-1000:]") limited to its first
  `cap` examples. TFDS slices do not clip, so a split no larger than `cap` is returned as it is;
  `split_infos` maps split names to their SplitInfo (a builder's `info.splits`)."""
  import tensorflow_datasets as tfds
  parts = tfds.core.ReadInstruction.from_spec(spec).to_absolute(split_infos)
  if len(parts) != 1:  # "a+b": not sliced further (its parts' caps would not add up)
    log.warning("split %r is read whole: a cap of %d applies to one split or slice only.",
                spec, cap)
    return spec
  if "[" not in spec:
    return f"{spec}[:{cap}]" if split_infos[spec].num_examples > cap else spec
  part = parts[0]
  start = part.from_ or 0
  end = split_infos[part.splitname].num_examples if part.to is None else part.to
  return f"{part.splitname}[{start}:{start + cap}]" if end - start > cap else spec


def _make_tfds_source(tfds_name, splits, caps, tfds_data_dir, data_dir_fn, prepare_fn,
                      decoders, builder_kwargs):
  import seqio
  import tensorflow as tf
  split_map = dict(splits)  # shared with the LazyTfdsLoader: capped slices are filled in lazily
  capped = set()

  class TfdsSource(seqio.TfdsDataSource):
    """TfdsDataSource that never downloads, caps splits and explains an unprepared dataset."""

    def _resolve(self, split=None):
      if data_dir_fn is not None:
        self.tfds_dataset.override_data_dir(data_dir_fn())
      if prepare_fn is not None:
        prepare_fn()
      if split in caps and split not in capped:
        try:
          split_map[split] = capped_split(split_map[split], caps[split],
                                          self.tfds_dataset.builder.info.splits)
        except Exception:  # no split metadata (e.g. under tfds.testing.mock_data): no slice
          pass
        capped.add(split)

    def _not_prepared(self, err):
      text = str(err)
      if "cannot be loaded at version" in text or "not found in" in text and "version" in text:
        return DatasetNotPreparedError(
            f"TFDS dataset {tfds_name!r}: {text.splitlines()[0][:300]} Fix the version in the "
            "task's tfds_name.")
      if type(err).__name__ == "DatasetNotFoundError":
        return DatasetNotPreparedError(
            f"TFDS has no dataset {tfds_name!r}: {text.splitlines()[0][:300]}")
      first = " ".join(text.split())
      detail = "" if "could not find data" in first else \
          f"{type(err).__name__}: {first[:200]}"
      return DatasetNotPreparedError(
          not_prepared_message(tfds_name, self.tfds_dataset.data_dir, detail),
          tfds_name=tfds_name, data_dir=self.tfds_dataset.data_dir)

    def get_dataset(self, split=None, shuffle=True, seed=None, shard_info=None, **kwargs):
      try:
        self._resolve(split)
        ds = super().get_dataset(split, shuffle=shuffle, seed=seed, shard_info=shard_info,
                                 **kwargs)
      except DatasetNotPreparedError:
        raise
      except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as e:
        raise self._not_prepared(e) from e
      except Exception as e:  # tfds raises several types for a missing dataset
        if "not found" in str(e).lower() or "could not find" in str(e).lower():
          raise self._not_prepared(e) from e
        raise
      is_train = tf.constant(split == "train")
      return ds.enumerate().map(
          lambda i, ex: dict(ex, _is_train=is_train, _index=i),
          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def list_shards(self, split):
      """The split's files; [] when TFDS cannot list them (no split metadata, e.g. under
      tfds.testing.mock_data, or not prepared). seqio then reads the whole split and shards
      the examples (`ds.shard`), and get_dataset raises the not-prepared error if need be."""
      self._resolve(split)
      try:
        return super().list_shards(split)
      except Exception:
        return []

    def num_input_examples(self, split):
      """The split's size (after the cap), or None when TFDS does not know it (not prepared,
      or mocked): get_dataset raises the explanatory error in that case."""
      try:
        self._resolve(split)
        return super().num_input_examples(split)
      except Exception:
        return None

  return TfdsSource(tfds_name, tfds_data_dir=tfds_data_dir, splits=split_map, read_only=True,
                    decoders=decoders, tfds_builder_kwargs=builder_kwargs)


def _kind(v) -> str:
  return "list" if isinstance(v, list) else "null" if v is None else "value"


@dataclasses.dataclass
class _FileRows:
  """One file's rows. `fields`: the keys every row has (the header of a CSV/TSV); `gaps`: a key
  only some JSONL rows have -> (line of the first row without it, line of the first with it,
  that row's keys); `kinds`: field -> ("list" or "value", its first line)."""
  fields: list[str]
  rows: list[dict]
  gaps: dict[str, tuple[int, int, list[str]]] = dataclasses.field(default_factory=dict)
  kinds: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)


def _read_jsonl(path: str, text: str) -> _FileRows:
  """A JSONL file's rows: each a JSON object; a field has one type (list or value) in all rows.

  A key that only some rows have is a gap, not a field: the task may not read it."""
  rows, lines, seen, kinds, clash = [], [], {}, {}, {}
  for n, row in iter_jsonl(path, FlanjaxError, ', e.g. {"review": "...", "label": "..."}',
                           text=text):
    for k, v in row.items():
      seen.setdefault(k, n)
      kind = _kind(v)
      if kind == "null":
        continue
      there = kinds.setdefault(k, (kind, n))
      if there[0] != kind and k not in clash:
        clash[k] = (n, kind, there[1])
    rows.append(row)
    lines.append(n)
  if not rows:
    return _FileRows([], [])
  fields = [k for k in rows[0] if all(k in r for r in rows)]
  gaps = {}
  for k in seen:
    if k not in fields:
      i = next(i for i, r in enumerate(rows) if k not in r)
      gaps[k] = (lines[i], seen[k], list(rows[i]))
  for k, (n, kind, m) in sorted(clash.items(), key=lambda c: c[1][0]):
    if k in fields:
      here, there = ("a list", "a single value") if kind == "list" else ("a single value", "a list")
      raise FlanjaxError(f"{path}:{n}: {k!r} is {here} here but {there} at line {m}; give it "
                         "the same type in every row.")
  return _FileRows(fields, rows, gaps, {k: kinds[k] for k in fields if k in kinds})


def _read_csv(path: str, f, delimiter: str) -> _FileRows:
  """A CSV/TSV file's rows; the first row is the header and every row has its fields. CSV
  fields may be quoted ("a, b"; strictly: a stray quote is an error, not rows run together);
  TSV fields are taken as they are (a quote is text) and cannot hold a tab."""
  import csv
  tsv = delimiter == "\t"
  reader = (csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE) if tsv
            else csv.reader(f, delimiter=delimiter, strict=True))

  def rows_of():
    try:
      yield from reader
    except csv.Error as e:
      raise FlanjaxError(f"{path}:{reader.line_num}: {e}: a quote that is not closed, or text "
                         "after a closing one? A CSV field that holds a comma, a quote or a "
                         'line break is quoted whole, with each quote inside doubled ("say '
                         '""hi""").') from None

  header, rows = None, []
  for row in rows_of():
    if not row:  # a blank line
      continue
    if header is None:
      header = row
      dup = sorted({c for c in header if header.count(c) > 1})
      if dup:
        raise FlanjaxError(f"{path}:{reader.line_num}: the header names column {dup[0]!r} twice.")
      continue
    if len(row) != len(header):
      what = (f"no {', '.join(repr(c) for c in header[len(row):])}" if len(row) < len(header)
              else f"{len(row) - len(header)} more than the header's columns")
      fix = ("A TSV field cannot hold a tab: use CSV or JSONL for such text." if tsv
             else f"Quote fields that contain {delimiter!r}.")
      raise FlanjaxError(f"{path}:{reader.line_num}: {len(row)} fields, the header has "
                         f"{len(header)} ({', '.join(header)}): {what}. {fix}")
    rows.append(dict(zip(header, row)))
  return _FileRows(header or [], rows)


def _read_rows(path: str, fmt: str) -> _FileRows:
  """One file's rows (UTF-8; a byte-order mark, as Excel writes, is dropped); a malformed row
  is a FlanjaxError naming path:line."""
  import io

  import tensorflow as tf
  with tf.io.gfile.GFile(path, "rb") as f:
    data = f.read()
  text = decode_text(data, path, fix="save the file as UTF-8 text (e.g. Excel's 'CSV UTF-8')")
  if fmt == "jsonl":
    return _read_jsonl(path, text)
  return _read_csv(path, io.StringIO(text, newline=""), "\t" if fmt == "tsv" else ",")


def _split_fields(parts: Sequence[tuple[str, _FileRows]]):
  """(fields, gaps) of a split's files: its fields are those every row of every file
  has; gaps: any other key -> ((path, line or None, keys there) where it is first missing,
  (path, line or None) where it first is), the first missing first."""
  fields = [k for k in parts[0][1].fields if all(k in part.fields for _, part in parts)]
  kinds = {}
  for p, part in parts:
    for k, (kind, n) in part.kinds.items():
      there = kinds.setdefault(k, (kind, f"{p}:{n}"))
      if k in fields and there[0] != kind:
        here, there_ = ("a list", "a single value") if kind == "list" else \
            ("a single value", "a list")
        raise FlanjaxError(f"{p}:{n}: {k!r} is {here} here but {there_} at {there[1]}; give it "
                           "the same type in every row of every file.")
  gaps = {}
  for k in dict.fromkeys(k for _, part in parts for k in [*part.fields, *part.gaps]):
    if k in fields:
      continue
    lack = have = None
    for p, part in parts:
      if k in part.gaps:
        n_lack, n_have, keys = part.gaps[k]
        lack, have = lack or (p, n_lack, keys), have or (p, n_have)
      elif k in part.fields:
        have = have or (p, None)
      else:
        lack = lack or (p, None, [*part.fields, *part.gaps])
    gaps[k] = (lack, have)
  order = {p: i for i, (p, _) in enumerate(parts)}
  return fields, dict(sorted(gaps.items(), key=lambda g: (order[g[1][0][0]], g[1][0][1] or 0)))


def _gap_message(name: str, key: str, lack, have, fields: Sequence[str]) -> str:
  (lack_path, lack_line, keys), (have_path, have_line) = lack, have
  where = (f"line {have_line}" if have_path == lack_path else
           f"{have_path}:{have_line}" if have_line else have_path)
  what = (f"{lack_path}:{lack_line}: the row has no {key!r}" if lack_line else
          f"{lack_path} has no field {key!r}")
  close = difflib.get_close_matches(key, [k for k in keys if k not in fields], n=1)
  hint = f" (it has {close[0]!r}: a typo?)" if close else ""
  return (f"{what}{hint}, which task {name!r} reads ({where} has it); give every row {key!r}, "
          "or stop reading it in the preprocessor / templates.")


def _check_split_fields(name, check_fn, path, fields, gaps) -> None:
  """check_fn(path, fields) over the fields every row has. When that fails but succeeds with the
  keys only some rows have, the one it needs is the error, at the first row without it."""
  def error(keys):
    try:
      check_fn(path, keys)
    except FlanjaxError as e:
      return e
    return None

  err = error(list(fields))
  if err is None:
    return
  if gaps and error([*fields, *gaps]) is None:
    for k in gaps:
      if error([*fields, *(g for g in gaps if g != k)]) is not None:
        raise FlanjaxError(_gap_message(name, k, *gaps[k], fields)) from None
  raise err


def _text(value) -> str:
  """A file's value as a string field: text as it is, JSON null as "", any other JSON value
  (true, 5, {"a": 1}) as its JSON text."""
  if value is None:
    return ""
  return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _make_file_source(name, paths: Mapping[str, str], fmt: str, max_train_examples=None,
                      check_fn: Callable[[str, Sequence[str]], None] | None = None,
                      max_eval_examples=None):
  """seqio source of the files' rows. check_fn(file, keys) checks a split's fields on first
  read (the preprocessor's inputs and outputs). A split's fields are the keys every row of
  every file has; other keys are dropped unless the task reads one (then an error at the first
  row or file without it)."""
  import seqio
  import tensorflow as tf

  @functools.lru_cache(maxsize=None)
  def columns(split):
    files = sorted(tf.io.gfile.glob(paths[split])) if any(c in paths[split] for c in "*?[") \
        else [paths[split]]
    if not files:
      raise FileNotFoundError(f"Task {name!r}: split {split!r}: no file matches {paths[split]!r}.")
    parts = []
    for p in files:
      if not tf.io.gfile.exists(p):
        raise FileNotFoundError(f"Task {name!r}: split {split!r} file {p!r} does not exist.")
      part = _read_rows(p, fmt)
      if part.rows:
        parts.append((p, part))
    if not parts:
      raise FlanjaxError(f"Task {name!r}: split {split!r} ({paths[split]}) has no rows.")
    fields, gaps = _split_fields(parts)
    if check_fn is not None:
      _check_split_fields(name, check_fn, parts[0][0], fields, gaps)
    if not fields:
      raise FlanjaxError(f"Task {name!r}: split {split!r}: no field is in every row of "
                         f"{paths[split]} (the rows have {', '.join(gaps)}); give every row the "
                         "fields the task reads.")
    rows = [r for _, part in parts for r in part.rows]
    cols, lists = {}, set()
    for k in fields:
      vals = []
      for r in rows:
        v = r[k]
        if isinstance(v, list):  # joined here (one string column), split again in dataset_fn
          lists.add(k)
          v = OPTIONS_SEP.join(_text(x) for x in v)
        vals.append(_text(v))
      cap = max_train_examples if split == "train" else max_eval_examples
      cols[k] = vals[:cap] if cap else vals
    return cols, frozenset(lists)

  def dataset_fn(split, shuffle_files, seed=None):
    del shuffle_files, seed
    cols, lists = columns(split)
    ds = tf.data.Dataset.from_tensor_slices(cols)
    is_train = tf.constant(split == "train")

    def row(i, ex):
      for k in lists:  # a JSON list is a tf.string [n] field ([] an empty one)
        ex[k] = tf.cond(tf.equal(ex[k], ""), lambda: tf.zeros([0], tf.string),
                        lambda k=k: tf.strings.split(ex[k], OPTIONS_SEP))
      return dict(ex, _is_train=is_train, _index=i)
    return ds.enumerate().map(row)

  class FileSource(seqio.FunctionDataSource):
    """The files' rows; sizes are counted from the files (the mixing rates need them)."""

    def num_input_examples(self, split: str) -> int:
      return len(next(iter(columns(split)[0].values())))

  return FileSource(dataset_fn, splits=list(paths))


# ------------------------------------------------------------------------------------------
# Task construction.


def _validate(name, cluster, templates, metric, options, headline=None, rank_metrics=None):
  if not name or not name.replace("_", "").replace(".", "").isalnum():
    raise FlanjaxError(f"Task name {name!r}: use letters, digits, '_' and '.'.")
  from flanjax import metrics
  if rank_metrics and rank_metrics not in metrics.RANK_METRICS:
    raise FlanjaxError(f"Task {name!r}: rank_metrics={rank_metrics!r} is not one of "
                       f"{list(metrics.RANK_METRICS)}.{_close(rank_metrics, metrics.RANK_METRICS)}")
  if metric not in metrics.METRIC_KINDS:
    raise FlanjaxError(f"Task {name!r}: metric {metric!r} is not one of {metrics.METRIC_KINDS}."
                       f"{_close(metric, metrics.METRIC_KINDS)}")
  if headline:
    try:
      metrics.check_headline(metric, headline)
    except ValueError as e:
      raise FlanjaxError(f"Task {name!r}: {e}") from None
  templates = tuple(templates)
  if not templates or not all(isinstance(t, tmpl.Template) for t in templates):
    raise FlanjaxError(f"Task {name!r}: templates must be a non-empty list of "
                     "flanjax.templates.Template.")
  if options is not None and len(options) < 2:
    raise FlanjaxError(f"Task {name!r}: options must list at least 2 choices.")
  if not cluster:
    raise FlanjaxError(f"Task {name!r}: give a cluster (e.g. 'nli').")
  return templates


def _output_features(vocabulary):
  import seqio
  return {"inputs": seqio.Feature(vocabulary, add_eos=True, required=False),
          "targets": seqio.Feature(vocabulary, add_eos=True)}


def _variant_suffix(mode, num_shots, options, scoring, template=None):
  parts = []
  if template is not None:
    parts.append(f"template{template}")
  if mode != "instruction":
    parts.append(mode)
  if num_shots:
    parts.append(f"{num_shots}shot")
  if not options:
    parts.append("no_opt")
  if scoring:
    parts.append("scoring")
  return "__".join(parts)


def _register(name, *, source_fn, dataset, cluster, templates, preprocessor, metric, options,
              vocabulary, has_options, splits, num_train_examples, max_train_examples,
              task_kwargs, filter_fn=None, source_name="", headline=None, rank_metrics=None,
              answer_in_options=False):
  import seqio

  from flanjax import vocab
  if vocabulary is None:
    vocabulary = vocab.default_vocabulary()  # read on first use (check_vocabulary below)
  source_cache = {}

  def source():
    if "s" not in source_cache:
      source_cache["s"] = source_fn()
    return source_cache["s"]

  def build(mode="instruction", num_shots=0, options_block=True, scoring=False, template=None):
    suffix = _variant_suffix(mode, num_shots, options_block, scoring, template)
    task_name = f"{name}__{suffix}" if suffix else name
    if task_name in seqio.TaskRegistry.names():
      return seqio.TaskRegistry.get(task_name)

    def check_vocabulary(dataset_):
      """A missing / unreadable SentencePiece file: one error before tf.data traces anything
      (the tokenizer would read it inside a map, as a multi-line StagingError)."""
      vocab.check_vocabulary(vocabulary, task=task_name)
      return dataset_

    steps = [pp.fields_fn(name, preprocessor, options, filter_fn, source=source_name,
                          answer_in_options=answer_in_options),
             pp.render_fn(name, templates, mode=mode, dataset=dataset, cluster=cluster,
                          with_options=options_block, template=template)]
    if num_shots:
      shots_split = exemplar_split(splits)
      if shots_split is None:
        raise FlanjaxError(f"Task {name!r} has no train split: k-shot exemplars come from it.")

      def pool():  # the train exemplars once per template (one format without templates)
        ds = steps[0](source().get_dataset(shots_split, shuffle=False).map(
            lambda ex: dict(ex, _is_train=False)))
        per_template = range(len(templates)) if mode == "instruction" else [None]
        return [pp.render_fn(name, templates, mode=mode, dataset=dataset, cluster=cluster,
                             with_options=options_block, template=t)(ds) for t in per_template]
      steps.append(pp.few_shot_fn(name, num_shots, pool))
    if scoring:
      if not has_options:
        raise FlanjaxError(f"Task {name!r} has no options: rank classification needs options.")
      steps.append(pp.scoring_fn)
    else:
      steps.append(pp.drop_index)
    tokenize = functools.partial(seqio.preprocessors.tokenize, copy_pretokenized=True)
    # seqio repeats the data at the cache point: the steps after it (templates, exemplars) run
    # again each epoch, with an index that counts on across epochs (`index_across_epochs`), so a
    # training example meets other templates, not its first one every epoch. Exemplar pruning
    # needs the run-time sequence length there too.
    fns = ([check_vocabulary, steps[0], seqio.CacheDatasetPlaceholder(), pp.index_across_epochs]
           + steps[1:] + [tokenize, seqio.preprocessors.append_eos_after_trim])
    if scoring:
      metric_fns, postprocess = [_score_metric("rank_classification")], _scoring_postprocess
    else:
      metric_fns, postprocess = [_predict_metric(metric)], pp.references_postprocess
    task = seqio.Task(task_name, source=source(), preprocessors=fns,
                      output_features=_output_features(vocabulary),
                      metric_fns=metric_fns, postprocess_fn=postprocess, **task_kwargs)
    seqio.TaskRegistry.add_provider(task_name, task)
    TASK_INFO[task_name] = dataclasses.replace(
        TASK_INFO[name], name=task_name, base=name if suffix else "", mode=mode,
        num_shots=num_shots, scoring=scoring, template=template, options_block=options_block)
    return task

  if name in seqio.TaskRegistry.names():
    raise FlanjaxError(f"Task {name!r} is already registered; pick another name or call "
                     "seqio.TaskRegistry.remove(name) first.")
  TASK_INFO[name] = TaskInfo(
      cluster=cluster, metric=metric, has_options=has_options, dataset=dataset, name=name,
      templates=tuple(templates), splits=tuple(splits.items()),
      num_train_examples=num_train_examples, max_train_examples=max_train_examples,
      headline=headline or "", rank_metrics=rank_metrics or "")
  _BUILDERS[name] = build
  try:
    return build()
  except Exception:
    TASK_INFO.pop(name, None)
    _BUILDERS.pop(name, None)
    raise


def _check_caps(name: str, max_train_examples, max_eval_examples) -> None:
  """A task's caps are integers >= 1 or None (0 would make an empty split)."""
  for flag, cap in (("max_train_examples", max_train_examples),
                    ("max_eval_examples", max_eval_examples)):
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
      raise FlanjaxError(f"Task {name!r}: {flag}={cap!r} must be an integer >= 1 (or None for "
                         "every row).")


def _split_caps(splits: Mapping[str, str], max_train: int | None, max_eval: int | None):
  out = {}
  for k in splits:
    cap = max_train if k in ("train", EXEMPLAR_SPLIT) else max_eval
    if cap is not None:
      out[k] = int(cap)
  return out


def register_tfds_task(name: str, tfds_name: str, *, cluster: str,
                       templates: Sequence[tmpl.Template], preprocessor: Callable | None,
                       splits: Mapping[str, str], metric: str,
                       options: Sequence[str] | None = None, max_train_examples: int = 30_000,
                       max_eval_examples: int | None = None, vocabulary=None,
                       tfds_data_dir: str | None = None, num_train_examples: int | None = None,
                       has_options: bool | None = None, decoders=None,
                       tfds_builder_kwargs=None, data_dir_fn: Callable[[], str] | None = None,
                       prepare_fn: Callable[[], object] | None = None,
                       filter_fn: Callable | None = None, headline: str | None = None,
                       rank_metrics: str | None = None, **task_kwargs):
  """Registers a TFDS dataset as an instruction task; returns the seqio.Task.

  preprocessor: tf-traceable fn(raw TFDS example) -> dict of flat tf.string fields; option tasks
    emit `answer` (the correct option's text) and either pass static `options` or emit an
    `options` field (tf.string [n]). has_options defaults to whether options are static or
    any template uses {options_}.
  num_train_examples: optional static size of the train split for mixing rates when the data
    is not prepared. data_dir_fn / prepare_fn: resolve the data dir / prepare data lazily
    (the offline collection uses them). filter_fn: tf predicate on the raw example; examples
    where it is False are dropped (e.g. unlabeled test rows).
  headline: the task's headline metric in per-cluster means and reports, one of the names its
    metric returns (or "rank_accuracy"), e.g. "em" for `metric="squad"`; default: the metric
    kind's (`flanjax.metrics.PRIMARY_METRIC`: rank_accuracy / accuracy, rougeLsum, bleu, f1).
  rank_metrics: metrics evaluation computes from the rank-classification winners beside
    rank_accuracy, one of `flanjax.metrics.RANK_METRICS` (they read fields the preprocessor
    emits: MultiRC's `group`, STS-B's `label_value`; `flanjax.metrics.rank_task_metrics`).
  """
  templates = _validate(name, cluster, templates, metric, options, headline, rank_metrics)
  _check_caps(name, max_train_examples, max_eval_examples)
  if has_options is None:
    has_options = options is not None or any(t.uses_options for t in templates)
  if "train" not in splits and not splits:
    raise FlanjaxError(f"Task {name!r}: give splits, e.g. {{'train': 'train', 'validation': ...}}.")
  caps = _split_caps(splits, max_train_examples, max_eval_examples)
  source_fn = functools.partial(_make_tfds_source, tfds_name, dict(splits), caps, tfds_data_dir,
                                data_dir_fn, prepare_fn, decoders, tfds_builder_kwargs)
  return _register(name, source_fn=source_fn, dataset=tfds_name.split(":")[0], cluster=cluster,
                   templates=templates, preprocessor=preprocessor, metric=metric,
                   options=options, vocabulary=vocabulary, has_options=has_options,
                   splits=dict(splits), num_train_examples=num_train_examples,
                   max_train_examples=max_train_examples, task_kwargs=task_kwargs,
                   filter_fn=filter_fn, source_name=f"TFDS dataset {tfds_name!r}",
                   headline=headline, rank_metrics=rank_metrics)


def register_file_task(name: str, paths: Mapping[str, str], *, format: str | None = None,
                       cluster: str = "custom", templates: Sequence[tmpl.Template], metric: str,
                       preprocessor: Callable | None = None,
                       options: Sequence[str] | None = None, vocabulary=None,
                       max_train_examples: int = 30_000, max_eval_examples: int | None = None,
                       headline: str | None = None, rank_metrics: str | None = None,
                       **task_kwargs):
  """Registers local JSONL/CSV/TSV files (one per split; globs allowed) as a task.

  Rows are read in Python (string columns; a JSON list, e.g. per-example "options", becomes a
  tf.string [n] field). format defaults to the files' extension. The train split is capped at
  `max_train_examples` rows, every other split at `max_eval_examples` (None: all). headline,
  rank_metrics: as in `register_tfds_task` (a `group` / `label_value` column feeds the rank
  metrics).
  """
  templates = _validate(name, cluster, templates, metric, options, headline, rank_metrics)
  _check_caps(name, max_train_examples, max_eval_examples)
  if not paths:
    raise FlanjaxError(f"Task {name!r}: paths must map splits to files, e.g. "
                     "{'train': 'train.jsonl', 'validation': 'dev.jsonl'}.")
  if format is None:
    exts = {os.path.splitext(p)[1].lstrip(".").lower() for p in paths.values()}
    exts = {"jsonl" if e in ("json", "jsonl") else e for e in exts}
    if len(exts) != 1 or next(iter(exts)) not in FILE_FORMATS:
      raise FlanjaxError(f"Task {name!r}: cannot infer the format from {sorted(exts)}; pass "
                       f"format= one of {FILE_FORMATS}.")
    format = next(iter(exts))
  if format not in FILE_FORMATS:
    raise FlanjaxError(f"Task {name!r}: format {format!r} is not one of {FILE_FORMATS}.")

  def check_fields(path, fields):
    """On first read of a split: the preprocessor reads only the file's fields and emits what
    the templates use."""
    pp.check_preprocessor(name, preprocessor, fields, options=options, templates=templates,
                          source=f"file {path}")

  has_options = options is not None or any(t.uses_options for t in templates)
  return _register(name, source_fn=lambda: _make_file_source(name, paths, format,
                                                             max_train_examples, check_fields,
                                                             max_eval_examples),
                   dataset=name, cluster=cluster, templates=templates,
                   preprocessor=preprocessor, metric=metric, options=options,
                   vocabulary=vocabulary, has_options=has_options, splits=dict(paths),
                   num_train_examples=None, max_train_examples=max_train_examples,
                   task_kwargs=task_kwargs,
                   source_name=f"files {', '.join(sorted(set(paths.values())))}",
                   headline=headline, rank_metrics=rank_metrics, answer_in_options=True)


def task_variant(name: str, *, mode: str = "instruction", num_shots: int = 0,
                 options: bool = True, scoring: bool = False, template: int | None = None) -> str:
  """Registers (once) and returns the name of a variant of base task `name`.

  mode: "instruction" | "no_template" | "dataset_name"; num_shots: k-shot exemplars from the
  train split; options=False drops the OPTIONS block; scoring=True: rank-classification rows;
  template=i: every example rendered with the task's template i (a direct one; FLAN evaluates
  each template as a task of its own), where the base task draws one per example.
  """
  if name not in _BUILDERS:
    raise UnknownNameError(f"Unknown base task {name!r}.{_close(name, _BUILDERS)}")
  if mode not in tmpl.MODES:
    raise FlanjaxError(f"Unknown mode {mode!r}; valid: {', '.join(tmpl.MODES)}.")
  if num_shots < 0:
    raise FlanjaxError(f"num_shots must be >= 0, got {num_shots}.")
  if template is not None:
    direct = direct_templates(name)
    if mode != "instruction":
      raise FlanjaxError(f"template={template} goes with mode 'instruction' (mode {mode!r} "
                         "renders no template).")
    if isinstance(template, bool) or template not in direct:
      raise FlanjaxError(f"Task {name!r}: template={template!r} is not one of its direct "
                         f"(evaluation) templates {direct}.")
  return _BUILDERS[name](mode=mode, num_shots=num_shots, options_block=options,
                         scoring=scoring, template=template).name


def direct_templates(name: str) -> list[int]:
  """Indices of base task `name`'s direct templates: those an evaluation example may be
  rendered with (inverted templates are for training only)."""
  info = TASK_INFO.get(name)
  if info is None or name not in _BUILDERS:
    raise UnknownNameError(f"Unknown base task {name!r}.{_close(name, _BUILDERS)}")
  return [i for i, t in enumerate(info.templates) if not t.inverted]


def rank_classification_examples(example: Mapping) -> list[dict]:
  """Python expansion of one eval example (numpy/bytes) into one row per option; the
  `answer_index` option and every option equal to one of its `references` are correct."""
  def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)
  opts = [text(o) for o in example["options"]]
  inputs = text(example["inputs_pretokenized"])
  ans = int(example["answer_index"])
  golds = {text(r) for r in example.get("references", ())}
  return [{"inputs": inputs, "targets": o, "option_index": j, "is_correct": j == ans or o in golds}
          for j, o in enumerate(opts)]
