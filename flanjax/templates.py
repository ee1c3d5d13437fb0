"""Instruction templates: (inputs, targets) format strings over an example's fields.

A `Template` holds two Python `str.format` strings over the flat string fields that a task's
preprocessor emits. The special field `{options_}` renders FLAN's answer-options block
("\\n\\nOPTIONS:\\n- a\\n- b") from the example's `options` list, or "" in the no-options variant.

Rendering happens inside the tf.data graph (`render_tf`), and in plain Python for previews and
tests (`render`); both give the same text. The template for an example is chosen by
`template_index_tf`: a stateless hash of (seed, example index), so a run is reproducible and a
resumed run sees the same data.

Modes (ablations of the FLAN paper): `instruction` (the templates), `no_template` (the raw
input fields joined by newlines, plus the options block), `dataset_name` (the raw input
prefixed with "[<Cluster>: <dataset>]").
"""
from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence
from typing import Any

from flanjax.errors import FlanjaxError

OPTIONS_FIELD = "options_"
OPTIONS_HEADER = "\n\nOPTIONS:\n- "
OPTIONS_SEPARATOR = "\n- "
MODES = ("instruction", "no_template", "dataset_name")


class TemplateError(FlanjaxError):
  """A template that names a field the example does not have, or is malformed."""


@dataclasses.dataclass(frozen=True)
class Template:
  """An instruction template.

  inputs: `str.format` string over the example's fields; "{options_}" renders the OPTIONS block.
  targets: `str.format` string, e.g. "{answer}".
  inverted: True for a template that asks the opposite task (e.g. write the question); such
    templates are used for training only.
  """

  inputs: str
  targets: str
  inverted: bool = False

  def __post_init__(self):
    for which in ("inputs", "targets"):
      parse(getattr(self, which))

  def fields(self) -> tuple[str, ...]:
    """The example fields this template reads (without `options_`), in order of appearance."""
    out = []
    for fmt in (self.inputs, self.targets):
      for _, field in parse(fmt):
        if field is not None and field != OPTIONS_FIELD and field not in out:
          out.append(field)
    return tuple(out)

  @property
  def uses_options(self) -> bool:
    return any(field == OPTIONS_FIELD for _, field in parse(self.inputs))


def parse(fmt: str) -> list[tuple[str, str | None]]:
  """Splits a format string into (literal, field-or-None) pieces; rejects specs/conversions."""
  out = []
  try:
    pieces = list(string.Formatter().parse(fmt))
  except ValueError as e:
    raise TemplateError(f"Malformed template {fmt!r}: {e} (write literal braces as '{{{{' / '}}}}')."
                        ) from e
  for literal, field, spec, conversion in pieces:
    if field is not None:
      if not field or field.isdigit():
        raise TemplateError(f"Template {fmt!r} uses a positional field '{{{field}}}': name the "
                            "example field, e.g. '{premise}'.")
      if spec or conversion:
        raise TemplateError(f"Template {fmt!r}: field '{field}' has a format spec or conversion; "
                            "templates only substitute string fields.")
      if not field.replace("_", "").isalnum():
        raise TemplateError(f"Template {fmt!r}: field '{field}' must be a plain field name.")
    out.append((literal, field))
  return out


def options_block(options: Sequence[str]) -> str:
  """The FLAN options block for `options` (python)."""
  if not options:
    return ""
  return OPTIONS_HEADER + OPTIONS_SEPARATOR.join(options)


def _missing_field_error(task: str, index: int, field: str, available: Sequence[str],
                         source: str = "") -> TemplateError:
  import difflib
  close = difflib.get_close_matches(field, list(available), n=3)
  hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
  src = f" from {source}" if source else ""
  return TemplateError(f"Task {task!r}, template {index}: field '{{{field}}}' is not in the "
                       f"example{src} (fields: {', '.join(sorted(available))}).{hint}")


# Fields a template cannot show: each example's options and gold references (lists of strings)
# and its answer's index. The options reach the text through {options_}.
UNSHOWN_FIELDS = ("options", "references", "answer_index")


def check_fields(task: str, templates: Sequence[Template], available: Sequence[str], *,
                 source: str = "") -> None:
  """Raises TemplateError naming the task, template index and field for a missing field
  (and `source`, e.g. the file the example fields come from)."""
  for i, t in enumerate(templates):
    for field in t.fields():
      if field in UNSHOWN_FIELDS:
        raise TemplateError(f"Task {task!r}, template {i} uses '{{{field}}}', a field a "
                            "template cannot show; write '{options_}' for the OPTIONS block.")
      if field not in available:
        raise _missing_field_error(task, i, field, available, source)
    if t.uses_options and "options" not in available:
      raise TemplateError(f"Task {task!r}, template {i} uses '{{options_}}' but the task has no "
                          "options: pass options=[...] or emit an 'options' field.")


def render(template: Template, example: Mapping[str, Any], *, with_options: bool = True,
           task: str = "?", index: int = 0) -> tuple[str, str]:
  """Renders a template over a python example (str fields; `options` a list of str)."""
  values = {}
  for k, v in example.items():
    if isinstance(v, bytes):
      v = v.decode("utf-8")
    values[k] = v
  opts = [o.decode("utf-8") if isinstance(o, bytes) else str(o) for o in values.get("options", [])]
  values[OPTIONS_FIELD] = options_block(opts) if with_options else ""
  out = []
  for fmt in (template.inputs, template.targets):
    for _, field in parse(fmt):
      if field is not None and field not in values:
        raise _missing_field_error(task, index, field, [k for k in values if k != OPTIONS_FIELD])
    out.append(fmt.format(**values))
  return out[0], out[1]


def raw_input_fields(templates: Sequence[Template]) -> tuple[str, ...]:
  """Fields of the raw input (no_template mode): those in the first non-inverted inputs."""
  for t in templates:
    if not t.inverted:
      return tuple(f for _, f in parse(t.inputs) if f is not None and f != OPTIONS_FIELD)
  raise TemplateError("No non-inverted template.")


# ------------------------------------------------------------------------------------------
# TensorFlow side.


def options_block_tf(options):
  """tf.string [n] -> tf.string scalar; "" when n == 0."""
  import tensorflow as tf
  joined = tf.strings.reduce_join(options, separator=OPTIONS_SEPARATOR)
  return tf.cond(tf.size(options) > 0, lambda: OPTIONS_HEADER + joined, lambda: tf.constant(""))


def _format_tf(fmt: str, values):
  import tensorflow as tf
  parts = []
  for literal, field in parse(fmt):
    if literal:
      parts.append(tf.constant(literal))
    if field is not None:
      parts.append(values[field])
  if not parts:
    return tf.constant("")
  return tf.strings.join(parts)


def render_tf(template: Template, example, *, with_options: bool = True, task: str = "?",
              index: int = 0):
  """Renders one template over a dict of tf.string scalars -> (inputs, targets) tf.string."""
  import tensorflow as tf
  values = {k: v for k, v in example.items() if k != "options"}
  if template.uses_options:
    if "options" not in example:
      raise TemplateError(f"Task {task!r}, template {index} uses '{{options_}}' but the example "
                          "has no 'options' field.")
    values[OPTIONS_FIELD] = (options_block_tf(example["options"]) if with_options
                             else tf.constant(""))
  for fmt in (template.inputs, template.targets):
    for _, field in parse(fmt):
      if field is not None and field not in values:
        raise _missing_field_error(task, index, field, list(example))
  return _format_tf(template.inputs, values), _format_tf(template.targets, values)


def template_index_tf(num_templates: int, seed, example_index, salt: int = 0):
  """Deterministic template index in [0, num_templates) from (seed, salt, example index)."""
  import tensorflow as tf
  key = tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + salt, tf.cast(example_index, tf.int64)])
  return tf.random.stateless_uniform([], seed=key, minval=0, maxval=num_templates, dtype=tf.int32)


def render_any_tf(templates: Sequence[Template], example, choice, *, with_options: bool = True,
                  task: str = "?"):
  """Renders templates[choice] (choice: int32 scalar tensor) -> (inputs, targets)."""
  import tensorflow as tf
  branches = [
      (lambda t=t, i=i: render_tf(t, example, with_options=with_options, task=task, index=i))
      for i, t in enumerate(templates)
  ]
  if len(branches) == 1:
    return branches[0]()
  return tf.switch_case(choice, branches)


def raw_input_tf(templates: Sequence[Template], example, *, with_options: bool = True,
                 prefix: str = ""):
  """The no_template input: the raw input fields joined by newlines (+ the options block)."""
  import tensorflow as tf
  fields = raw_input_fields(templates)
  parts = [example[f] for f in fields]
  text = tf.strings.reduce_join(tf.stack(parts), separator="\n") if parts else tf.constant("")
  if prefix:
    text = prefix + text
  if with_options and "options" in example:
    text = text + options_block_tf(example["options"])
  return text
