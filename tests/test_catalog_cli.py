"""`flanjax preview` / `flanjax mixture` with `--module`: a fresh process sees the user's tasks."""
import json
import sys
import textwrap

import pytest

from flanjax import catalog
from flanjax.errors import FlanjaxError


@pytest.fixture
def user_module(tmp_path, monkeypatch):
  """A module `catcli_user_tasks` in tmp_path (on sys.path) that registers a file task + mixture."""
  data = tmp_path / "train.jsonl"
  data.write_text("".join(json.dumps({"q": f"What is {i} plus 1?", "a": str(i + 1)}) + "\n"
                          for i in range(4)))
  (tmp_path / "catcli_user_tasks.py").write_text(textwrap.dedent(f"""
      import seqio
      from flanjax import registration
      from flanjax.templates import Template
      registration.register_file_task(
          "catcli_reviews", {{"train": {str(data)!r}}}, cluster="math", metric="accuracy",
          vocabulary=seqio.ByteVocabulary(), templates=[Template("Q: {{q}}", "{{a}}")])
      seqio.MixtureRegistry.add("catcli_mix", [("catcli_reviews", 1.0)])
      """))
  monkeypatch.syspath_prepend(str(tmp_path))
  yield "catcli_user_tasks"
  import seqio

  from flanjax import registration
  sys.modules.pop("catcli_user_tasks", None)
  seqio.MixtureRegistry.remove("catcli_mix")
  seqio.TaskRegistry.remove("catcli_reviews")
  registration.TASK_INFO.pop("catcli_reviews", None)
  getattr(registration, "_BUILDERS", {}).pop("catcli_reviews", None)


def test_preview_and_mixture_import_the_users_module(user_module, capsys):
  with pytest.raises(FlanjaxError, match="unknown task 'catcli_reviews'"):
    catalog.main_preview(["catcli_reviews", "-n", "1"])  # not imported yet
  assert catalog.main_preview(["--module", user_module, "catcli_reviews", "-n", "2"]) == 0
  out = capsys.readouterr().out
  assert out.count("=== catcli_reviews [train] example") == 2 and "Q: What is" in out
  assert catalog.main_mixture(["catcli_mix", "--module", user_module]) == 0
  out = capsys.readouterr().out
  assert "catcli_reviews" in out and "100.00" in out and "1 task\n" in out


def test_missing_module_is_one_clear_error(tmp_path, monkeypatch):
  with pytest.raises(FlanjaxError, match=r"--module no_such_mod_q: no module named 'no_such_mod_q'"):
    catalog.main_preview(["--module", "no_such_mod_q", "anything"])
  # A module that exists but fails inside names the module and the cause.
  (tmp_path / "catcli_broken.py").write_text("import no_such_dependency_q\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(FlanjaxError, match=r"--module catcli_broken: importing it failed: .*"
                                         "no_such_dependency_q"):
    catalog.main_mixture(["--module", "catcli_broken", "x"])


def test_gin_file_can_import_the_users_module(user_module, tmp_path):
  """eval / heldout / train parse gin files: an `import` line there registers the user's tasks."""
  import seqio

  from flanjax import gin_config
  from flanjax.gin_config import gin
  gin_file = tmp_path / "mine.gin"
  gin_file.write_text(f"import {user_module}\n")
  gin.clear_config()
  try:
    gin_config.parse_gin([str(gin_file)])
  finally:
    gin.clear_config()
  assert "catcli_reviews" in seqio.TaskRegistry.names()


def test_preview_reads_tfds_from_tfds_data_dir(tmp_path):
  """`--tfds_data_dir` (which the not-prepared message suggests) is a flag of preview and mixture
  too, and the dataset is looked for there."""
  import seqio
  from seqio import utils as seqio_utils
  old = seqio_utils._TFDS_DATA_DIR_OVERRIDE  # noqa: SLF001
  try:
    with pytest.raises(FlanjaxError, match=f"not prepared in data_dir '{tmp_path}'"):
      catalog.main_preview(["flan2021_rte", "-n", "1", "--tfds_data_dir", str(tmp_path)])
  finally:
    seqio.set_tfds_data_dir_override(old)


def test_preview_names_the_task_when_tensorflow_fails_on_its_examples(tmp_path):
  """A preprocessor that fails at run time inside tf.data (here a text field read as a number)
  is one line naming the task and the likely cause, not TensorFlow's traceback."""
  import seqio
  import tensorflow as tf

  from flanjax import registration
  from flanjax.templates import Template
  data = tmp_path / "words.jsonl"
  data.write_text(json.dumps({"q": "one", "a": "two"}) + "\n")
  registration.register_file_task(
      "catcli_tf_fails", {"train": str(data)}, cluster="math", metric="accuracy",
      vocabulary=seqio.ByteVocabulary(), templates=[Template("Q: {q}", "{a}")],
      preprocessor=lambda ex: {"q": tf.strings.as_string(tf.strings.to_number(ex["q"])),
                               "a": ex["a"]})
  try:
    with pytest.raises(FlanjaxError, match=r"^Task 'catcli_tf_fails': TensorFlow failed reading "
                       r"its examples \(InvalidArgumentError: .*\)\. A task's preprocessor runs "
                       r"on tensors inside tf.data"):
      catalog.preview("catcli_tf_fails", 1)
  finally:
    seqio.TaskRegistry.remove("catcli_tf_fails")
    registration.TASK_INFO.pop("catcli_tf_fails", None)
    getattr(registration, "_BUILDERS", {}).pop("catcli_tf_fails", None)


def _if_on_text(ex):
  """A Python `if` on a string tensor: fails while tf.data traces the preprocessor."""
  if ex["q"]:
    return {"q": ex["q"], "a": ex["a"]}
  return {"q": ex["a"], "a": ex["a"]}


def test_preview_names_the_task_when_its_preprocessor_uses_a_field_as_a_python_bool(
    tmp_path, monkeypatch):
  """A Python `if` on a field fails building the dataset (tracing), before any example is read:
  one line naming the task, the preprocessor's line and the fix; FLANJAX_TRACEBACK=1: TF's."""
  import seqio

  from flanjax import registration
  from flanjax.templates import Template
  data = tmp_path / "words.jsonl"
  data.write_text(json.dumps({"q": "one", "a": "two"}) + "\n")
  registration.register_file_task(
      "catcli_if_on_text", {"train": str(data)}, cluster="math", metric="accuracy",
      vocabulary=seqio.ByteVocabulary(), templates=[Template("Q: {q}", "{a}")],
      preprocessor=_if_on_text)
  try:
    with pytest.raises(FlanjaxError, match=r"^Task 'catcli_if_on_text': its preprocessor uses a "
                       r"tensor field as a Python bool or int, or in Python control flow \(at "
                       r"\S+test_catalog_cli\.py:\d+ in _if_on_text: `if ex\[\"q\"\]:`; ValueError: "
                       r"condition of if statement expected to be `tf\.bool` scalar, got .*\)\. "
                       r"A task's preprocessor is traced into tf\.data once, on tensors: use tf "
                       r"ops \(tf\.cond, tf\.where, .*FLANJAX_TRACEBACK=1 shows TensorFlow's whole "
                       r"error\.$") as e:
      catalog.main_preview(["catcli_if_on_text", "-n", "1"])
    assert "\n" not in str(e.value)
    monkeypatch.setenv("FLANJAX_TRACEBACK", "1")
    with pytest.raises(ValueError, match="condition of if statement") as e:
      catalog.preview("catcli_if_on_text", 1)
    assert not isinstance(e.value, FlanjaxError)
  finally:
    seqio.TaskRegistry.remove("catcli_if_on_text")
    registration.TASK_INFO.pop("catcli_if_on_text", None)
    getattr(registration, "_BUILDERS", {}).pop("catcli_if_on_text", None)


def test_preview_of_an_evaluation_only_task_reads_its_validation_split(capsys):
  """A translation direction task has no train split: preview reads `validation` unless --split
  says otherwise, and renders that direction only."""
  import seqio
  import tensorflow_datasets as tfds
  from flanjax.tasks import flan2021

  from flanjax import registration
  name, = flan2021.register_flan2021(vocabulary=seqio.ByteVocabulary(), prefix="catcli_",
                                     keys=["wmt16_translate_deen_en_to_de"])
  try:
    assert catalog.default_split(name) == "validation"
    assert catalog.default_split("flan2021_wmt16_translate_deen") == "train"
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
      assert catalog.main_preview([name, "-n", "2"]) == 0
      with pytest.raises(FlanjaxError, match="no split 'train'; splits: validation"):
        catalog.main_preview([name, "-n", "1", "--split", "train"])
    out = capsys.readouterr().out
    assert out.count(f"=== {name} [validation] example") == 2
    assert "German" in out and "What does this mean in English?" not in out
  finally:
    seqio.TaskRegistry.remove(name)
    registration.TASK_INFO.pop(name, None)
    getattr(registration, "_BUILDERS", {}).pop(name, None)


def test_preview_and_mixture_flag_mistakes_are_one_line(capsys):
  with pytest.raises(SystemExit) as e:
    catalog.main_preview(["offline_x", "--mode", "fewshot"])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert len(err.splitlines()) == 1
  assert err.startswith("flanjax preview: error: argument --mode: invalid choice: 'fewshot'")
  with pytest.raises(SystemExit) as e:
    catalog.main_mixture(["offline", "--tfds_dir", "/d"])  # not --tfds_data_dir abbreviated
  assert e.value.code == 2
  assert capsys.readouterr().err == (
      "flanjax mixture: error: unrecognized arguments: --tfds_dir /d. Did you mean "
      "--tfds_data_dir? Run 'flanjax mixture --help' for the flags.\n")


def test_preview_one_template(capsys):
  """`flanjax preview TASK --template N` renders every example with template N: the `tN` of
  `flanjax eval --templates each` and the `template` of its predictions."""
  import flanjax.tasks  # noqa: F401  (offline_* tasks; their data is generated locally)

  from flanjax import registration
  templates = registration.TASK_INFO["offline_sentiment"].templates
  head = templates[4].inputs.split("{")[0]
  assert head  # template 4 starts with its own words
  assert catalog.main_preview(["offline_sentiment", "-n", "4", "--template", "4",
                               "--split", "validation"]) == 0
  out = capsys.readouterr().out
  blocks = out.split("--- inputs ---\n")[1:]
  assert len(blocks) == 4 and all(b.startswith(head) for b in blocks)
  with pytest.raises(FlanjaxError, match="not one of its direct"):
    catalog.preview("offline_sentiment", template=11)  # an inverted, training-only template
