"""Templates: parsing, python and tf rendering agree, options block, deterministic choice."""
import numpy as np
import pytest
import tensorflow as tf

from flanjax import templates as tmpl
from flanjax.templates import Template

EX = {"premise": "A cat sleeps.", "hypothesis": "An animal sleeps.", "answer": "yes",
      "options": ["yes", "no"]}


def test_render_python_with_and_without_options():
  t = Template("{premise}\nDoes it follow that {hypothesis}?{options_}", "{answer}")
  inputs, targets = tmpl.render(t, EX)
  assert inputs == "A cat sleeps.\nDoes it follow that An animal sleeps.?\n\nOPTIONS:\n- yes\n- no"
  assert targets == "yes"
  inputs, _ = tmpl.render(t, EX, with_options=False)
  assert inputs.endswith("sleeps.?") and "OPTIONS" not in inputs
  assert t.fields() == ("premise", "hypothesis", "answer") and t.uses_options


def test_tf_render_matches_python():
  temps = [Template("{premise} {hypothesis}{options_}", "{answer}"),
           Template("Q: {hypothesis}\nGiven {premise}", "{answer}"),
           Template("{{literal}} {premise}", "{hypothesis}", inverted=True)]
  ex_tf = {k: tf.constant(v) for k, v in EX.items()}
  for i, t in enumerate(temps):
    got = tmpl.render_any_tf(temps, ex_tf, tf.constant(i))
    want = tmpl.render(t, EX)
    assert (got[0].numpy().decode(), got[1].numpy().decode()) == want
  assert tmpl.render(temps[2], EX)[0] == "{literal} A cat sleeps."


def test_missing_field_names_task_index_and_field():
  temps = [Template("{premise}", "{answer}"), Template("{premis} {hypothesis}", "{answer}")]
  with pytest.raises(tmpl.TemplateError, match=r"'my_task', template 1: field '\{premis\}'.*"
                     r"premise"):
    tmpl.check_fields("my_task", temps, ["premise", "hypothesis", "answer"])
  ex_tf = {k: tf.constant(v) for k, v in EX.items() if k != "options"}
  with pytest.raises(tmpl.TemplateError, match="template 1"):
    tmpl.render_tf(temps[1], ex_tf, task="my_task", index=1)
  with pytest.raises(tmpl.TemplateError, match="template 0"):
    tmpl.render(temps[1], {"hypothesis": "x", "answer": "y"}, task="t", index=0)


@pytest.mark.parametrize("bad", ["{0}", "{premise!r}", "{premise:>10}", "{a.b}", "{"])
def test_malformed_templates_rejected(bad):
  with pytest.raises(tmpl.TemplateError):
    Template(bad, "{answer}")


def test_template_index_deterministic_and_spread():
  idx = [int(tmpl.template_index_tf(10, 7, i)) for i in range(400)]
  again = [int(tmpl.template_index_tf(10, 7, i)) for i in range(400)]
  other_seed = [int(tmpl.template_index_tf(10, 8, i)) for i in range(400)]
  assert idx == again and idx != other_seed
  counts = np.bincount(idx, minlength=10)
  assert counts.min() > 15 and counts.max() < 70  # all templates get used


def test_raw_input_and_options_block():
  temps = [Template("Premise {premise} hyp {hypothesis}{options_}", "{answer}")]
  ex_tf = {k: tf.constant(v) for k, v in EX.items()}
  raw = tmpl.raw_input_tf(temps, ex_tf, prefix="[Nli: x] ").numpy().decode()
  assert raw == "[Nli: x] A cat sleeps.\nAn animal sleeps.\n\nOPTIONS:\n- yes\n- no"
  assert tmpl.options_block_tf(tf.zeros([0], tf.string)).numpy() == b""


def test_check_fields_names_the_source():
  t = Template("{reveiw}{options_}", "{answer}")
  with pytest.raises(tmpl.TemplateError, match=r"^Task 'x', template 0: field '\{reveiw\}' is not "
                                               r"in the example from file a\.csv \(fields: answer, "
                                               r"options, review\)\. Did you mean 'review'\?$"):
    tmpl.check_fields("x", [t], ["review", "answer", "options"], source="file a.csv")


def test_list_fields_are_refused_with_the_options_block_named():
  """'{options}' passed the field check and failed at trace time (the Python renderer printed
  the list): refused up front, naming '{options_}'."""
  t = tmpl.Template("{review}\nChoices: {options}", "{answer}")
  with pytest.raises(tmpl.TemplateError, match=r"^Task 'x', template 0 uses '\{options\}', a "
                                               r"field a template cannot show; write "
                                               r"'\{options_\}' for the OPTIONS block\.$"):
    tmpl.check_fields("x", [t], ["review", "answer", "options"])
