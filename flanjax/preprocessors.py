"""tf.data preprocessors that turn raw examples into instruction examples.

Pipeline of every registered task (see flanjax.registration):
  source (adds `_is_train`, `_index`) -> `fields_fn` (user preprocessor; options/answer_index)
  -> `render_fn` (template by mode) [-> `few_shot_fn`] [-> `scoring_fn`] -> seqio tokenize -> EOS.

Every task emits the same structure so any tasks can be mixed: `inputs`, `targets` (strings,
then tokens), `options` (tf.string [n]; empty for non-option tasks), `answer_index`
(int32; -1 when there are no options) and `references` (tf.string [n]: every gold answer or
reference text when the preprocessor emits them, else empty; eval targets use them).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from flanjax import templates as tmpl

FEW_SHOT_SEPARATOR = "\n\n"
# Fields a user preprocessor may emit as lists (tf.string [n]): the answer options, and every
# gold answer / reference for the metric (eval targets become this list; see
# `references_postprocess`).
LIST_FIELDS = ("options", "references")
# Fields a preprocessor may emit for metrics that read more than the target: evaluation's rank
# metrics (flanjax.metrics.RANK_METRICS: MultiRC's question `group`, STS-B's float `label_value`).
# Rendering carries them to the evaluated examples as they are.
EVAL_FIELDS = ("group", "label_value")
FEW_SHOT_POOL = 128


def current_seed() -> int:
  """The seed seqio's get_dataset is running under (0 when none): templates depend on it."""
  import seqio
  seed = getattr(seqio.utils, "_NEXT_MAP_SEED", None)
  return 0 if seed is None else int(seed)


class _Fields(dict):
  """The raw example given to a user preprocessor: records a field it reads that is missing."""

  def __init__(self, example, missing: list):
    super().__init__(example)
    self._missing = missing

  def __missing__(self, key):
    self._missing.append(key)
    raise KeyError(key)


def _missing_field_message(task: str, key, fields, source: str = "") -> str:
  import difflib
  close = difflib.get_close_matches(str(key), list(fields), n=3)
  hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
  where = source or "the data"
  return (f"Task {task!r}: the preprocessor reads field {key!r}, which {where} does not have "
          f"(fields: {', '.join(sorted(fields))}).{hint} Fix the preprocessor or the data.")


def _no_answer_message(task: str, out_fields, source: str = "") -> str:
  src = f" (from {source})" if source else ""
  return (f"Task {task!r}: an option task's preprocessor must emit 'answer' (the correct "
          f"option's text), but it emits only {', '.join(sorted(out_fields)) or 'nothing'}{src}; "
          "e.g. preprocessor=lambda ex: {..., 'answer': ex['<label field>']}.")


def output_fields(task: str, preprocessor: Callable | None, fields: Sequence[str], *,
                  source: str = "") -> list[str] | None:
  """The fields the preprocessor emits for raw examples with string `fields` (traced, not run).

  A field it reads that `fields` lacks is a FlanjaxError naming the task, `source` (e.g. the
  file) and the fields present; None when tracing fails otherwise (the pipeline reports it)."""
  import tensorflow as tf

  from flanjax.errors import FlanjaxError
  if preprocessor is None:
    return list(fields)
  missing, out = [], []

  def trace(ex):
    out.extend(preprocessor(_Fields(ex, missing)))

  spec = {k: tf.TensorSpec([], tf.string) for k in fields}
  try:
    tf.function(trace).get_concrete_function(spec)
  except Exception:  # noqa: BLE001 (a bug in the preprocessor: the data pipeline reports it)
    if missing:
      raise FlanjaxError(_missing_field_message(task, missing[0], fields, source)) from None
    return None
  return out


def check_preprocessor(task: str, preprocessor: Callable | None, fields: Sequence[str], *,
                       options: Sequence[str] | None, templates: Sequence[tmpl.Template],
                       source: str = "") -> None:
  """Checks, before any data is read through it, that the preprocessor only reads `fields` and
  emits what the templates use (and `answer` for an option task); FlanjaxErrors name `source`."""
  out = output_fields(task, preprocessor, fields, source=source)
  if out is None:
    return
  available = [k for k in out if not k.startswith("_")]
  if options is not None and "options" not in available:
    available.append("options")
  if "options" in available:
    if "answer" not in available:
      from flanjax.errors import FlanjaxError
      raise FlanjaxError(_no_answer_message(task, out, source))
    available.append("answer_index")
  tmpl.check_fields(task, templates, available, source=source)


def fields_fn(task: str, preprocessor: Callable | None, options: Sequence[str] | None,
              filter_fn: Callable | None = None, source: str = "",
              answer_in_options: bool = False):
  """Dataset fn: drops raw examples failing filter_fn, applies the user preprocessor and
  normalises `options` / `answer_index`. A field the preprocessor reads that the data lacks,
  or a bad output, is a FlanjaxError (raised before tf.data stages anything else); `source`
  names the data in it."""
  import tensorflow as tf

  from flanjax.errors import FlanjaxError
  missing, errors = [], []

  def fail(msg):
    errors.append(FlanjaxError(msg))
    raise errors[-1]

  def fn(ex):
    is_train, index = ex.pop("_is_train"), ex.pop("_index")
    out = dict(preprocessor(_Fields(ex, missing))) if preprocessor is not None else dict(ex)
    for k in list(out):
      if k in LIST_FIELDS:
        continue
      out[k] = tf.convert_to_tensor(out[k])
      if out[k].dtype != tf.string:
        out[k] = tf.strings.as_string(out[k])
      if out[k].shape.rank != 0:
        fail(f"Task {task!r}: preprocessor field {k!r} must be a scalar string, got shape "
             f"{out[k].shape} (only {' / '.join(LIST_FIELDS)} may be lists).")
    if options is not None:
      out["options"] = tf.constant(list(options), tf.string)
    if "options" in out:
      opts = tf.reshape(tf.convert_to_tensor(out["options"], tf.string), [-1])
      out["options"] = opts
      if "answer" not in out:
        fail(_no_answer_message(task, [k for k in out if k != "options"], source))
      hit = tf.where(tf.equal(opts, out["answer"]))
      out["answer_index"] = tf.cond(tf.size(hit) > 0, lambda: tf.cast(hit[0, 0], tf.int32),
                                    lambda: tf.constant(-1, tf.int32))
      if answer_in_options:  # else the model would learn, and be scored on, a non-option
        check = tf.debugging.Assert(tf.size(hit) > 0, [
            f"Task {task} ({source}): row", index, "(from 0) has the answer", out["answer"],
            "which is none of its options:", opts, "- make each answer the text of one "
            "option, in the same case and spelling."], summarize=20)
        with tf.control_dependencies([check]):
          out["answer_index"] = tf.identity(out["answer_index"])
    if "references" in out:
      out["references"] = tf.reshape(tf.convert_to_tensor(out["references"], tf.string), [-1])
    # Content key of the raw example (template-independent): k-shot never picks the example.
    content = [out[k] for k in sorted(out) if k not in LIST_FIELDS + ("answer_index",)]
    out["_key"] = tf.strings.to_hash_bucket_fast(
        tf.strings.reduce_join(tf.stack(content), separator="\x1e"), 2**62)
    out["_is_train"], out["_index"] = is_train, index
    return out

  def apply(dataset_):
    if filter_fn is not None:
      dataset_ = dataset_.filter(
          lambda ex: filter_fn({k: v for k, v in ex.items() if not k.startswith("_")}))
    missing.clear()
    errors.clear()
    try:
      return dataset_.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    except Exception as e:
      # tf.data re-raises an error of the traced fn with a multi-line "in user code" message.
      if missing and isinstance(e, KeyError):
        fields = [k for k in dataset_.element_spec if not k.startswith("_")]
        raise FlanjaxError(_missing_field_message(task, missing[0], fields, source)) from None
      if errors:
        raise FlanjaxError(str(errors[0])) from None
      raise

  return apply


def render_fn(task: str, templates: Sequence[tmpl.Template], *, mode: str, dataset: str,
              cluster: str, with_options: bool = True, template: int | None = None):
  """Dataset-level preprocessor: renders `inputs` / `targets` with a per-example template
  (instruction mode; `template=i` renders every example with templates[i], as the k-shot
  exemplar pools do) and keeps its index as `_template` (-1 in the other modes, which have one
  format)."""
  import tensorflow as tf
  if mode not in tmpl.MODES:
    raise tmpl.TemplateError(f"Unknown mode {mode!r}; valid: {', '.join(tmpl.MODES)}.")
  templates = list(templates)
  direct = [i for i, t in enumerate(templates) if not t.inverted]
  if not direct:
    raise tmpl.TemplateError(f"Task {task!r}: needs at least one non-inverted template.")
  if template is not None and not 0 <= template < len(templates):
    raise tmpl.TemplateError(f"Task {task!r}: template={template} is not one of its "
                             f"{len(templates)} templates.")
  salt = sum(ord(c) * 31 ** (i % 7) for i, c in enumerate(task)) % 1_000_003

  def apply(dataset_):
    seed = current_seed()
    # Check fields before tracing, so the error is a plain TemplateError (not a StagingError).
    fields = [k for k in dataset_.element_spec if not k.startswith("_")]
    tmpl.check_fields(task, templates, fields)

    def fn(ex):
      is_train, index, key = ex.pop("_is_train"), ex.pop("_index"), ex.pop("_key")
      has_options = "options" in ex
      if mode == "instruction":
        if template is not None:
          choice = tf.constant(template, tf.int32)
        else:
          i_all = tmpl.template_index_tf(len(templates), seed, index, salt)
          i_dir = tf.gather(tf.constant(direct, tf.int32),
                            tmpl.template_index_tf(len(direct), seed, index, salt))
          choice = tf.where(is_train, i_all, i_dir)  # inverted templates only for training
        inputs, targets = tmpl.render_any_tf(templates, ex, choice,
                                             with_options=with_options, task=task)
      else:
        choice = tf.constant(-1, tf.int32)  # one format, no template (few_shot_fn: row 0)
        first = templates[direct[0]]
        prefix = f"[{cluster.replace('_', ' ').title()}: {dataset}] " if mode == "dataset_name" \
            else ""
        inputs = tmpl.raw_input_tf(templates, ex, with_options=with_options, prefix=prefix)
        _, targets = tmpl.render_tf(first, ex, with_options=False, task=task, index=direct[0])
      out = {"inputs": inputs, "targets": targets}
      out["options"] = ex["options"] if has_options else tf.zeros([0], tf.string)
      out["answer_index"] = ex["answer_index"] if has_options else tf.constant(-1, tf.int32)
      refs = ex.get("references", tf.zeros([0], tf.string))
      if mode == "instruction" and any(t.inverted for t in templates):
        # An inverted template's target is not the answer: no references.
        inverted = tf.gather(tf.constant([t.inverted for t in templates]), choice)
        refs = tf.cond(inverted, lambda: tf.zeros([0], tf.string), lambda: refs)
      out["references"] = refs
      out.update({k: ex[k] for k in EVAL_FIELDS if k in ex})
      out["_index"], out["_key"], out["_template"] = index, key, choice
      return out

    return dataset_.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

  return apply


def references_postprocess(output, example=None, is_target=False):
  """seqio postprocess_fn: an eval target becomes the example's list of gold references (all
  answers / reference texts, for multi-reference metrics) when it has any; else unchanged."""
  if is_target and example is not None:
    refs = example.get("references")
    if refs is not None and len(refs):
      return [r.decode("utf-8") if isinstance(r, bytes) else str(r) for r in refs]
  return output


def index_across_epochs(dataset_):
  """After seqio's repeat (a post-cache step): a train example's `_index` counts on across
  epochs, so each epoch draws its template (and k-shot exemplars) anew; in the first epoch, and
  on every other split, the index is the example's own, as before the repeat."""
  import tensorflow as tf
  return dataset_.enumerate().map(
      lambda i, ex: dict(ex, _index=tf.where(ex["_is_train"], i, ex["_index"])))


def drop_index(dataset_):
  """Drops the bookkeeping fields (`_index`, `_key`, ...), keeping the template an example was
  rendered with as `template` (-1 in modes without templates), for evaluation's rows."""
  def fn(ex):
    out = {k: v for k, v in ex.items() if not k.startswith("_")}
    if "_template" in ex:
      out["template"] = ex["_template"]
    return out
  return dataset_.map(fn)


def few_shot_fn(task: str, num_shots: int, pool_fn: Callable[[], Sequence[object]]):
  """k-shot: prepends up to `num_shots` train exemplars, never the example itself, rendered with
  the example's own template (as FLAN: its 2021 few-shot tasks are registered per template, and
  its 2022 ones prune the exemplars of other templates).

  pool_fn() returns one rendered train dataset (inputs/targets strings) per template, in
  template order (one, for modes without templates); an example's `_template` picks its row.
  Exemplars are drawn per example from the first FEW_SHOT_POOL train examples, deterministically
  from (seed, index), formatted "inputs\\ntargets", joined with FEW_SHOT_SEPARATOR, and pruned
  (last ones first) so the tokenized input fits `sequence_length["inputs"]`.
  """
  import tensorflow as tf

  def apply(dataset_, sequence_length=None, output_features=None):
    seed = current_seed()
    pools = [ds.take(FEW_SHOT_POOL).batch(FEW_SHOT_POOL).get_single_element()
             for ds in pool_fn()]
    shots = tf.stack([tf.strings.join([p["inputs"], p["targets"]], separator="\n")
                      for p in pools])  # [templates, P]
    pool_keys = pools[0]["_key"]  # [P] int64 content keys (the same examples in every row)
    n_rows, n_pool = len(pools), tf.shape(pool_keys)[0]
    # A duplicated row of the train data is one exemplar: only its first copy is drawn.
    _, first_of = tf.unique(pool_keys)
    firsts = tf.math.unsorted_segment_min(tf.range(n_pool), first_of, tf.reduce_max(first_of) + 1)
    distinct = tf.equal(tf.range(n_pool), tf.gather(firsts, first_of))  # [P]
    vocab = output_features["inputs"].vocabulary if output_features else None
    max_len = (sequence_length or {}).get("inputs") if sequence_length else None
    shot_lens = None  # [templates, P] tokens of each exemplar with its separator
    if vocab is not None and max_len:
      # One string at a time: a batch of strings of different lengths is not every
      # vocabulary's encode_tf input (seqio's ByteVocabulary decodes it as one raw tensor).
      flat = tf.reshape(shots, [-1]) + FEW_SHOT_SEPARATOR
      shot_lens = tf.reshape(tf.map_fn(lambda x: tf.size(vocab.encode_tf(x)), flat,
                                       fn_output_signature=tf.int32), [n_rows, -1])

    def fn(ex):
      row = tf.clip_by_value(ex["_template"], 0, n_rows - 1)
      key = tf.stack([tf.cast(seed, tf.int64) + 7919, tf.cast(ex["_index"], tf.int64)])
      order = tf.argsort(tf.random.stateless_uniform([n_pool], seed=key))
      # Never the example itself, nor an exemplar twice.
      ok = tf.gather(tf.logical_and(tf.not_equal(pool_keys, ex["_key"]), distinct), order)
      chosen = tf.boolean_mask(order, ok)[:num_shots]
      def joined(k):  # the first k chosen exemplars before the example
        prefix = tf.strings.reduce_join(tf.gather(shots[row], chosen[:k]),
                                        separator=FEW_SHOT_SEPARATOR)
        return tf.cond(k > 0, lambda: prefix + FEW_SHOT_SEPARATOR + ex["inputs"],
                       lambda: ex["inputs"])

      k = tf.size(chosen)
      if shot_lens is not None:
        budget = max_len - 1 - tf.shape(vocab.encode_tf(ex["inputs"]))[0]
        lens = tf.cast(tf.gather(shot_lens[row], chosen), tf.int32)
        k = tf.reduce_sum(tf.cast(tf.cumsum(lens) <= budget, tf.int32))
        # The pieces' token counts are an estimate (tokens can merge or split where pieces
        # join): drop exemplars while the whole input would be cut, losing the example's end.
        k = tf.while_loop(
            lambda k: tf.logical_and(
                k > 0, tf.shape(vocab.encode_tf(joined(k)))[0] > max_len - 1),
            lambda k: (k - 1,), (k,))[0]
      out = dict(ex)
      out["inputs"] = joined(k)
      return out

    return dataset_.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

  return apply


def correct_options_tf(options, answer_index, references):
  """tf.bool [n]: the option at `answer_index` and every option equal to one of `references`
  (all gold answers, e.g. ReCoRD's spellings of the answer entity) are correct."""
  import tensorflow as tf
  j = tf.range(tf.size(options), dtype=tf.int32)
  refs = tf.reshape(references, [-1])
  is_ref = tf.reduce_any(tf.equal(tf.expand_dims(options, 1), tf.expand_dims(refs, 0)), axis=1)
  return tf.logical_or(tf.equal(j, tf.cast(answer_index, tf.int32)), is_ref)


def scoring_fn(dataset_):
  """Rank-classification rows: one per option, with `idx` [example, option] and `is_correct`
  (`correct_options_tf`: several options are correct when several are gold answers; T5's
  rank classification counts the winner right when it is any of them)."""
  import tensorflow as tf

  def rows(ex):
    n = tf.size(ex["options"])
    j = tf.range(n, dtype=tf.int32)
    index = tf.cast(ex["_index"], tf.int32)
    return tf.data.Dataset.from_tensor_slices({
        "inputs": tf.fill([n], ex["inputs"]),
        "targets": ex["options"],
        "idx": tf.stack([tf.fill([n], index), j], axis=1),
        "is_correct": correct_options_tf(ex["options"], ex["answer_index"],
                                         ex.get("references", tf.zeros([0], tf.string))),
        "answer_index": tf.fill([n], ex["answer_index"]),

    })

  return dataset_.flat_map(rows)
