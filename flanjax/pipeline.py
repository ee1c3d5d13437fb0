"""Host input pipeline: seqio task/mixture -> EncDecFeatureConverter -> numpy batches.

`train_batches` is deterministic: the same (mixture, seed, lengths, batch size, shard) gives
the same batches in every run and process (seeded TFDS file order, seeded shuffles and mixture
sampling, templates drawn from (seed, example index), deterministic tf.data maps).
`start_batch=k` resumes exactly: it rebuilds the same stream and skips its first k batches
(cost: the skipped examples are still read and preprocessed, about as fast as training data
is produced; see bench/pipeline.py for rates). For long runs `train_iterator(...)` gives an
iterator whose tf.data state can be saved and restored in O(1).

`batch_size` is the global batch; each of `num_shards` hosts reads its own shard of every task
(`seqio.ShardInfo(shard_index, num_shards)`) and yields `batch_size // num_shards` rows.

A task whose examples fail inside tf.data (a preprocessor's Python int() on a string field, a
data file gone), or whose preprocessor cannot even be traced into tf.data (a Python `if` / bool()
/ int() on a tensor field), is one FlanjaxError line naming the task or mixture and the likely
cause (`reading_examples`, `TrainIterator`); FLANJAX_TRACEBACK=1 raises TensorFlow's own error.
"""
from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Iterator, Mapping

import numpy as np

from flanjax import errors
from flanjax.errors import FlanjaxError


def get_provider(name: str):
  """The registered seqio Task or Mixture `name` (imports the catalog on demand)."""
  import seqio
  if name not in seqio.TaskRegistry.names() and name not in seqio.MixtureRegistry.names():
    import flanjax.mixtures  # noqa: F401  (registers the catalog's tasks and mixtures)
  if name in seqio.TaskRegistry.names() or name in seqio.MixtureRegistry.names():
    return seqio.get_mixture_or_task(name)
  known = list(seqio.TaskRegistry.names()) + list(seqio.MixtureRegistry.names())
  close = difflib.get_close_matches(name, known, n=3)
  hint = f" Closest: {', '.join(close)}." if close else ""
  from flanjax.registration import UnknownNameError
  raise UnknownNameError(f"Unknown task or mixture {name!r}.{hint}")


_PREPROCESSOR_CAUSE = (
    "A task's preprocessor runs on tensors inside tf.data: use tf ops (tf.strings.to_number, "
    "tf.strings.join, tf.where), not Python int() / str() / if on a field")
_FILE_CAUSE = ("One of its data files is missing, unreadable or damaged: check the task's paths "
               "(or prepare its TFDS dataset again)")


def _likely_cause(err) -> str | None:
  """What a user can fix about a TensorFlow error met reading examples; None: not theirs."""
  import tensorflow as tf
  if isinstance(err, (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)):
    return _PREPROCESSOR_CAUSE  # e.g. int() on a string tensor: a tf.strings.to_number / tf.cast
  if isinstance(err, (tf.errors.NotFoundError, tf.errors.PermissionDeniedError,
                      tf.errors.DataLossError)):
    return _FILE_CAUSE
  return None  # out of memory, unavailable, cancelled, internal: passed on unchanged


def first_line(message: str) -> str:
  """A TensorFlow error message's first meaningful line (`errors.first_line`), without its
  {{function_node ...}} and the tf.data iterator path before the error itself, cut at 300
  characters (TensorFlow says what failed first; the caller names the error's type).

  Not `errors.summary`: that one prefixes the type and keeps the start and the end of a long
  line (Orbax / tensorstore say what failed last) without tensorstore's appendix."""
  text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", errors.first_line(message).strip())
  text = re.sub(r"^Error in user-defined function passed to \S+ transformation with iterator: "
                r"\S+: ", "", text)
  return text[:300]


def examples_error(what: str, err) -> FlanjaxError | None:
  """The one-line FlanjaxError for TensorFlow error `err` (a tf.errors.OpError) raised while
  reading the examples of `what` ("Task 'x'", "Mixture 'm'"): the error's first line and its
  likely cause. None where it is not a mistake a user can fix in the task (out of memory, an
  unavailable file system, ...) or FLANJAX_TRACEBACK is set: the caller re-raises `err`."""
  cause = _likely_cause(err)
  if cause is None or os.environ.get("FLANJAX_TRACEBACK"):
    return None
  raw = errors.first_line(getattr(err, "message", str(err)))
  asserted = re.search(r"assertion failed: \[(.*)\]\s*$", raw)
  if asserted:  # a check of flanjax's own on the data (e.g. an answer among the options)
    return FlanjaxError(re.sub(r"\] \[", " ", asserted.group(1)).replace("\\'", "'"))
  if what.startswith("Mixture "):
    cause += " (`flanjax preview TASK` on each of its tasks shows which one fails)"
  return FlanjaxError(
      f"{what}: TensorFlow failed reading its examples ({type(err).__name__}: "
      f"{first_line(getattr(err, 'message', err))}). {cause}; FLANJAX_TRACEBACK=1 shows "
      "TensorFlow's whole error.")


# What TensorFlow / AutoGraph raise while tracing a preprocessor (building the dataset) that uses
# a tensor field as a Python value: a Python `if` / `while` on a non-bool tensor (AutoGraph's
# ValueError), bool() / `in` / iteration, or `if` without AutoGraph
# (OperatorNotAllowedInGraphError), a tensor as a list index, or int() / float() / range() / a
# %d format without AutoGraph (Python's TypeError naming the symbolic tensor). Other TypeErrors / ValueErrors (a TF op's dtype mismatch, a bug of the
# preprocessor's own) are not these: they pass unchanged.
_CONDITION = re.compile(r"^condition of (if statement|while loop) expected to be `tf\.bool` scalar")
_TENSOR_AS_NUMBER = re.compile(
    r"\bnot '?(Symbolic)?Tensor'?$"  # int() / float() argument, list / str index, %d format
    r"|^'(Symbolic)?Tensor' object cannot be interpreted as an integer"  # range(), ...
    r"|^unsupported format string passed to (Symbolic)?Tensor\.__format__")  # f"{x:d}"
_TRACING_CAUSE = (
    "A task's preprocessor is traced into tf.data once, on tensors: use tf ops (tf.cond, "
    "tf.where, tf.strings.to_number, tf.strings.length, tf.strings.regex_full_match) instead of "
    "Python if / bool() / int() / for on a field")


def _cause_message(err) -> str:
  """`err`'s own message: without the "in user code" stack AutoGraph puts before it."""
  meta = getattr(err, "ag_error_metadata", None)
  text = str(getattr(meta, "cause_message", None) or err).strip()
  # AutoGraph's cause message starts with the error's type name.
  return re.sub(rf"^{re.escape(type(err).__name__)}: ", "", text)


def _tensor_used_as_python(err) -> bool:
  """Whether `err`, raised building a dataset, is TensorFlow's for a tensor used as a Python
  bool / int or in Python control flow."""
  import tensorflow as tf
  if isinstance(err, tf.errors.OperatorNotAllowedInGraphError):
    return True
  first = (_cause_message(err).splitlines() or [""])[0].strip()
  if type(err) is ValueError:
    return bool(_CONDITION.search(first))
  if type(err) is TypeError:
    return bool(_TENSOR_AS_NUMBER.search(first))
  return False


def _user_frame(err) -> str | None:
  """Where the preprocessor went wrong: "file:line in fn: `code`", the innermost frame outside
  TensorFlow (AutoGraph's translated stack when it converted the function)."""
  import tensorflow as tf
  tf_dir = os.path.dirname(tf.__file__) + os.sep
  meta = getattr(err, "ag_error_metadata", None)
  if meta is not None:  # innermost first
    frames = [(f.filename, f.lineno, f.function_name, f.code)
              for f in getattr(meta, "translated_stack", ())]
  else:
    import traceback
    frames = [(f.filename, f.lineno, f.name, f.line)
              for f in reversed(traceback.extract_tb(err.__traceback__))]
  for filename, lineno, function, code in frames:
    if filename and not filename.startswith(tf_dir) and "__autograph_generated" not in filename:
      code = " ".join(str(code or "").split())
      snippet = f": `{code[:97] + '...' if len(code) > 100 else code}`" if code else ""
      return f"{filename}:{lineno} in {function}{snippet}"
  return None


def _failing_task(err) -> str | None:
  """The name of the seqio Task whose get_dataset raised `err` (innermost on its traceback)."""
  import seqio
  name, tb = None, err.__traceback__
  while tb is not None:
    owner = tb.tb_frame.f_locals.get("self")
    if isinstance(owner, seqio.Task):
      name = owner.name
    tb = tb.tb_next
  return name


def tracing_error(what: str, err) -> FlanjaxError | None:
  """The one-line FlanjaxError for `err`, raised while the dataset of `what` ("Task 'x'",
  "Mixture 'm'") was built, where it is TensorFlow's for a tensor field used as a Python bool /
  int or in Python control flow (see `_tensor_used_as_python`). None for any other error or
  when FLANJAX_TRACEBACK is set: the caller re-raises `err`."""
  if os.environ.get("FLANJAX_TRACEBACK") or not _tensor_used_as_python(err):
    return None
  if what.startswith("Mixture "):
    task = _failing_task(err)
    what += f" (task {task!r})" if task else ""
  detail = re.split(r"\.\s|;\s", first_line(_cause_message(err)), maxsplit=1)[0]
  where = _user_frame(err)
  return FlanjaxError(
      f"{what}: its preprocessor uses a tensor field as a Python bool or int, or in Python "
      f"control flow ({f'at {where}; ' if where else ''}{type(err).__name__}: {detail}). "
      f"{_TRACING_CAUSE}; FLANJAX_TRACEBACK=1 shows TensorFlow's whole error.")


@contextlib.contextmanager
def reading_examples(what: str):
  """Context in which the dataset of `what` ("Task 'x'", "Mixture 'm'") is built or its examples
  are read: a tf.errors.OpError with a likely cause becomes `examples_error`'s one line, a
  preprocessor's tensor used as a Python bool / int (found tracing it) `tracing_error`'s; every
  other error passes unchanged."""
  import tensorflow as tf
  try:
    yield
  except tf.errors.OpError as e:
    error = examples_error(what, e)
    if error is None:
      raise
    raise error from None
  except (TypeError, ValueError) as e:
    error = tracing_error(what, e)
    if error is None:
      raise
    raise error from None


def provider_label(name: str) -> str:
  """How messages name `name`: "Mixture 'name'" or "Task 'name'"."""
  import seqio
  kind = "Mixture" if name in seqio.MixtureRegistry.names() else "Task"
  return f"{kind} {name!r}"


def _check_lengths(task_feature_lengths: Mapping[str, int]):
  for k in ("inputs", "targets"):
    if k not in task_feature_lengths or int(task_feature_lengths[k]) <= 0:
      raise FlanjaxError(f"task_feature_lengths needs a positive {k!r} length, got "
                       f"{dict(task_feature_lengths)}.")


def train_dataset(mixture_or_task: str, *, task_feature_lengths: Mapping[str, int],
                  batch_size: int, seed: int, pack: bool = True, shard_index: int = 0,
                  num_shards: int = 1, start_batch: int = 0, split: str = "train"):
  """The tf.data.Dataset behind `train_batches` (batched, infinite, starting at start_batch)."""
  import seqio
  import tensorflow as tf

  from flanjax import registration
  _check_lengths(task_feature_lengths)
  if num_shards < 1 or not 0 <= shard_index < num_shards:
    raise FlanjaxError(f"shard_index={shard_index} must be in [0, num_shards={num_shards}).")
  if batch_size % num_shards:
    raise FlanjaxError(f"batch_size={batch_size} must be divisible by num_shards={num_shards}.")
  if start_batch < 0:
    raise FlanjaxError(f"start_batch must be >= 0, got {start_batch}.")
  if seed is None:
    raise FlanjaxError("train_batches needs an integer seed (determinism and exact resume).")
  provider = get_provider(mixture_or_task)
  lengths = {"inputs": int(task_feature_lengths["inputs"]),
             "targets": int(task_feature_lengths["targets"])}
  # Tracing a preprocessor that uses a tensor field as a Python bool / int: one line.
  with reading_examples(provider_label(mixture_or_task)), \
      registration.naming_unprepared_datasets(mixture_or_task, split):
    ds = provider.get_dataset(
        lengths, split=split, use_cached=False, shuffle=True, seed=int(seed),
        shard_info=seqio.ShardInfo(shard_index, num_shards), num_epochs=None,
        trim_output_features=True)
  converter = seqio.EncDecFeatureConverter(pack=pack)
  ds = converter(ds, lengths)
  ds = ds.batch(batch_size // num_shards, drop_remainder=True)
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.with_options(options)
  if start_batch:
    ds = ds.skip(start_batch)
  return ds.prefetch(2)


def train_batches(mixture_or_task: str, *, task_feature_lengths: Mapping[str, int],
                  batch_size: int, seed: int, pack: bool = True, shard_index: int = 0,
                  num_shards: int = 1, start_batch: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Infinite iterator of dicts of numpy arrays [batch_size // num_shards, length].

  Keys: encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
  decoder_loss_weights and, when packed, encoder/decoder_segment_ids and _positions.
  """
  ds = train_dataset(mixture_or_task, task_feature_lengths=task_feature_lengths,
                     batch_size=batch_size, seed=seed, pack=pack, shard_index=shard_index,
                     num_shards=num_shards, start_batch=start_batch)
  return ds.as_numpy_iterator()


class TrainIterator:
  """An iterator of numpy batches whose position can be saved and restored exactly.

  `save(prefix)` writes the tf.data iterator state (shuffle buffers, file positions, mixture
  sampler) with tf.train.Checkpoint and returns the path; `restore(path)` on an iterator built
  with the same arguments continues exactly there -- O(1) instead of `start_batch`'s O(k)
  skip. The state is per host (a few MB to a few hundred MB: it holds shuffle buffers).

  With `name` (the task or mixture read), a TensorFlow error making the iterator or reading
  examples that a user can fix (e.g. a preprocessor's int() on a string field) is
  `examples_error`'s one FlanjaxError line; any other error passes unchanged.
  """

  def __init__(self, dataset, name: str | None = None):
    import tensorflow as tf
    # Making the iterator optimizes the graph, where some errors show (MakeIterator).
    with reading_examples(provider_label(name)) if name else contextlib.nullcontext():
      self._it = iter(dataset)
    self._ckpt = tf.train.Checkpoint(iterator=self._it)
    self._name = name
    self._op_error = tf.errors.OpError

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    try:
      batch = next(self._it)
    except self._op_error as e:
      error = examples_error(provider_label(self._name), e) if self._name else None
      if error is None:
        raise
      raise error from None
    return {k: v.numpy() for k, v in batch.items()}

  def save(self, prefix: str) -> str:
    return self._ckpt.write(prefix)

  def restore(self, path: str) -> None:
    self._ckpt.read(path).assert_consumed()


def train_iterator(mixture_or_task: str, **kwargs) -> TrainIterator:
  """Like `train_batches` (same arguments), with `save` / `restore` of the exact position."""
  return TrainIterator(train_dataset(mixture_or_task, **kwargs), name=mixture_or_task)


def eval_datasets(task_or_mixture: str, split: str = "validation", *,
                  task_feature_lengths: Mapping[str, int] | None = None,
                  max_examples: int | None = None, num_shots: int = 0,
                  mode: str = "instruction", options: bool = True) -> dict:
  """{task name: tf.data.Dataset} of tokenized eval examples, in order, not shuffled.

  Examples keep `inputs_pretokenized`, `targets_pretokenized`, `options`, `answer_index`.
  Variants (num_shots / mode / options) are registered on demand. Raises if a task has no
  such split.
  """
  from flanjax import registration
  provider = get_provider(task_or_mixture)
  import seqio
  names = ([t.name for t in provider.tasks] if isinstance(provider, seqio.Mixture)
           else [provider.name])
  out = {}
  for name in names:
    base = registration.TASK_INFO.get(name)
    if base is not None and (num_shots or mode != "instruction" or not options):
      name = registration.task_variant(base.base or name, mode=mode, num_shots=num_shots,
                                       options=options)
    task = get_provider(name)
    if split not in task.splits:
      raise FlanjaxError(f"Task {name!r} has no split {split!r} (splits: "
                       f"{', '.join(task.splits)}).")
    from flanjax.evaluation import EVAL_SEED  # evaluation's template draws
    with reading_examples(f"Task {name!r}"):
      ds = task.get_dataset(task_feature_lengths, split=split, use_cached=False, shuffle=False,
                            seed=EVAL_SEED, num_epochs=1, trim_output_features=False)
    if max_examples:
      ds = ds.take(max_examples)
    out[name] = ds
  return out
