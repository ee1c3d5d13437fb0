"""errors.first_line / errors.summary and pipeline.first_line (TensorFlow's messages), which is
built on errors.first_line; none of them needs TensorFlow."""
from flanjax import errors, pipeline
from flanjax.errors import FlanjaxError


def test_first_line_is_the_first_non_blank_line():
  assert errors.first_line("\n\n   checkpoint x is damaged\nsecond line") == "checkpoint x is damaged"
  assert errors.first_line(ValueError(" one\r\ntwo")) == "one"
  assert errors.first_line("") == errors.first_line(" \n\t\n") == errors.first_line(OSError()) == ""


def test_summary_is_the_type_and_first_line():
  assert errors.summary(ValueError("\n  bad shape\n  detail")) == "ValueError: bad shape"
  assert errors.summary(FlanjaxError("\nmodel_dir x is a file.\nmore")) == "model_dir x is a file."
  assert errors.summary(KeyError("")) == "KeyError: ''"


def test_tensorflows_first_line_drops_its_function_node_and_iterator_path():
  message = ("\n  {{function_node __wrapped__IteratorGetNext_output_types_2_device_/job:localhost"
             "/replica:0/task:0/device:CPU:0}} Error in user-defined function passed to "
             "ParallelMapDatasetV2:12 transformation with iterator: Iterator::Root::Prefetch::"
             "ParallelMapV2: StringToNumberOp could not correctly convert string: one  \n"
             "\t [[{{node StringToNumber}}]] [Op:IteratorGetNext] name:")
  assert pipeline.first_line(message) == "StringToNumberOp could not correctly convert string: one"
  assert pipeline.first_line("{{function_node f}} gone.tfrecord\n more") == "gone.tfrecord"
  assert pipeline.first_line("x" * 400 + "END") == "x" * 300  # TensorFlow says what failed first
  assert pipeline.first_line("") == pipeline.first_line("\n \n") == ""
