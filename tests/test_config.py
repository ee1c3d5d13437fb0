"""T5Config / get_config validation: one-line FlanjaxErrors that name the field."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import NEUTRAL_CWD

from flanjax.config import T5Config, get_config
from flanjax.errors import FlanjaxError


@pytest.mark.parametrize("field,value,match", [
    ("d_model", -1, r"T5Config.d_model=-1 must be a positive integer"),
    ("d_ff", 0, r"T5Config.d_ff=0 must be a positive integer"),
    ("num_heads", 4.0, r"T5Config.num_heads=4.0 must be a positive integer"),
    ("num_encoder_layers", "2", r"T5Config.num_encoder_layers='2' must be a positive integer"),
    ("head_dim", True, r"T5Config.head_dim=True must be a positive integer"),
    ("vocab_size", None, r"T5Config.vocab_size=None must be a positive integer"),
    ("relative_attention_num_buckets", 2, r"relative_attention_num_buckets=2 must be >= 4"),
    ("relative_attention_max_distance", 16,
     r"relative_attention_max_distance=16 must be greater than relative_attention_num_buckets"),
    ("dropout_rate", 1.0, r"T5Config.dropout_rate=1.0: must be in \[0, 1\)"),
    ("dropout_rate", -0.1, r"T5Config.dropout_rate=-0.1: must be in \[0, 1\)"),
    ("dropout_rate", "0.1", r"T5Config.dropout_rate='0.1': must be in \[0, 1\)"),
    ("dropout_rate", float("nan"), r"T5Config.dropout_rate=nan"),
    ("layer_norm_epsilon", 0.0, r"T5Config.layer_norm_epsilon=0.0 must be a positive number"),
    ("eos_token_id", 32128, r"T5Config.eos_token_id=32128 must be an integer token id in "
                            r"\[0, vocab_size=32128\)"),
    ("pad_token_id", -1, r"T5Config.pad_token_id=-1 must be an integer token id"),
    ("scan_layers", "yes", r"T5Config.scan_layers='yes' must be True or False"),
    ("feed_forward_proj", "gelu2", r"T5Config.feed_forward_proj='gelu2': use one of"),
    ("dtype", "fp32", r"T5Config.dtype='fp32': use one of \('bfloat16', 'float16', 'float32'\)"),
    ("param_dtype", "int8", r"T5Config.param_dtype='int8': use one of"),
])
def test_bad_fields_raise_flanjax_error_naming_the_field(field, value, match):
  with pytest.raises(FlanjaxError, match=match):
    T5Config(**{field: value})
  with pytest.raises(ValueError, match=match):  # still a ValueError for existing callers
    get_config("tiny").replace(**{field: value})


def test_numpy_values_are_accepted_and_stored_as_python_types():
  config = T5Config(d_model=np.int64(64), dropout_rate=0, dtype=np.dtype("float32"))
  assert type(config.d_model) is int and config.d_model == 64
  assert type(config.dropout_rate) is float and config.dtype == "float32"
  assert T5Config.from_dict(json.loads(config.to_json())) == config


def test_get_config_and_from_dict_errors_are_flanjax_errors():
  with pytest.raises(FlanjaxError, match=r"Unknown model size 'tinyy'.*did you mean 'tiny'"):
    get_config("tinyy")
  with pytest.raises(FlanjaxError, match="Unknown model size 3"):
    get_config(3)
  with pytest.raises(FlanjaxError, match=r"unknown T5Config fields \['d_modle'\].*'d_model'"):
    get_config("tiny", d_modle=64)
  with pytest.raises(FlanjaxError, match=r"Unknown T5Config fields \['d_modle'\]"):
    T5Config.from_dict({"d_modle": 64})


@pytest.mark.parametrize("bindings,message", [
    (["--gin.T5Config.d_model=-1"], "T5Config.d_model=-1 must be a positive integer."),
    (["--gin.T5Config.feed_forward_proj='gelu2'"],
     "T5Config.feed_forward_proj='gelu2': use one of ('gated-gelu', 'relu')."),
    (["--gin.train.model_config=@t5_config()", "--gin.t5_config.size='tinyy'"],
     "Unknown model size 'tinyy'"),
])
def test_cli_prints_config_errors_on_one_line(tmp_path, bindings, message):
  exe = os.path.join(os.path.dirname(sys.executable), "flanjax")
  out = subprocess.run(
      [exe, "train", "--gin_file=models/t5_1_1_tiny.gin", "--gin.train.synthetic_data=True",
       "--gin.train.task_feature_lengths={'inputs':16,'targets':8}",
       "--gin.train.batch_size=4", "--gin.train.progress=False",
       f"--model_dir={tmp_path / 'run'}", *bindings],
      cwd=NEUTRAL_CWD, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr
  assert "Traceback" not in out.stderr
  lines = [line for line in out.stderr.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("flanjax train: error: "), out.stderr
  assert message in lines[0]
  assert not os.path.exists(tmp_path / "run")
