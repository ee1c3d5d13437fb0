"""T5Config / get_config validation: one-line FlanjaxErrors that name the field; the one type
check of config dataclass fields (check_field_types)."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import NEUTRAL_CWD

from flanjax.config import T5Config, check_field_types, get_config
from flanjax.errors import FlanjaxError


@pytest.mark.parametrize("field,value,match", [
    ("d_model", -1, r"T5Config.d_model=-1 must be a positive integer"),
    ("d_ff", 0, r"T5Config.d_ff=0 must be a positive integer"),
    ("num_heads", 4.0, r"^T5Config.num_heads=4.0 must be an integer\.$"),
    ("num_encoder_layers", "2", r"^T5Config.num_encoder_layers='2' must be an integer\.$"),
    ("head_dim", True, r"^T5Config.head_dim=True must be an integer\.$"),
    ("vocab_size", None, r"^T5Config.vocab_size=None must be an integer\.$"),
    ("d_model", np.float32(64), r"^T5Config.d_model=.*64.* must be an integer\.$"),
    ("relative_attention_num_buckets", 2, r"relative_attention_num_buckets=2 must be >= 4"),
    ("relative_attention_max_distance", 16,
     r"relative_attention_max_distance=16 must be greater than relative_attention_num_buckets"),
    ("dropout_rate", 1.0, r"T5Config.dropout_rate=1.0: must be in \[0, 1\)"),
    ("dropout_rate", -0.1, r"T5Config.dropout_rate=-0.1: must be in \[0, 1\)"),
    ("dropout_rate", "0.1", r"^T5Config.dropout_rate='0.1' must be a number\.$"),
    ("dropout_rate", None, r"^T5Config.dropout_rate=None must be a number\.$"),
    ("dropout_rate", float("nan"), r"T5Config.dropout_rate=nan: must be in \[0, 1\)"),
    ("layer_norm_epsilon", 0.0, r"T5Config.layer_norm_epsilon=0.0 must be a positive number"),
    ("layer_norm_epsilon", float("inf"), r"T5Config.layer_norm_epsilon=inf must be a positive "
                                         r"number"),
    ("layer_norm_epsilon", "1e-6", r"^T5Config.layer_norm_epsilon='1e-6' must be a number\.$"),
    ("eos_token_id", 32128, r"T5Config.eos_token_id=32128 must be an integer token id in "
                            r"\[0, vocab_size=32128\)"),
    ("pad_token_id", -1, r"T5Config.pad_token_id=-1 must be an integer token id"),
    ("pad_token_id", 5, r"^T5Config.pad_token_id=5 is not supported: flanjax pads with id 0"),
    ("decoder_start_token_id", 0.0, r"^T5Config.decoder_start_token_id=0.0 must be an "
                                    r"integer\.$"),
    ("scan_layers", "yes", r"^T5Config.scan_layers='yes' must be True or False\.$"),
    ("tie_word_embeddings", 1, r"^T5Config.tie_word_embeddings=1 must be True or False\.$"),
    ("float32_attention_logits", np.bool_(True), r"float32_attention_logits=.* must be True or "
                                                 r"False\.$"),
    ("feed_forward_proj", "gelu2", r"T5Config.feed_forward_proj='gelu2': use one of"),
    ("dtype", "fp32", r"T5Config.dtype='fp32': use one of \('bfloat16', 'float16', 'float32'\)"),
    ("param_dtype", "int8", r"T5Config.param_dtype='int8': use one of"),
    ("param_dtype", np.dtype("int8"), r"T5Config.param_dtype=dtype\('int8'\): use one of"),
    ("remat_policy", 3, r"T5Config.remat_policy=3: use one of"),
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


@dataclasses.dataclass
class _Fields:
  n: int = 1
  x: float | None = None
  flag: bool = False
  name: str = "a"


@pytest.mark.parametrize("kw,match", [
    ({"n": 1.0}, r"^_Fields.n=1.0 must be an integer\.$"),
    ({"n": "1"}, r"^_Fields.n='1' must be an integer\.$"),
    ({"n": None}, r"^_Fields.n=None must be an integer\.$"),
    ({"x": "0.5"}, r"^_Fields.x='0.5' must be a number or None\.$"),
    ({"x": True}, r"^_Fields.x=True must be a number or None\.$"),
    ({"flag": 0}, r"^_Fields.flag=0 must be True or False\.$"),
    ({"name": b"a"}, r"^_Fields.name=b'a' must be a string\.$"),
])
def test_check_field_types_names_field_value_and_type(kw, match):
  with pytest.raises(FlanjaxError, match=match):
    check_field_types(_Fields(**kw))
  with pytest.raises(FlanjaxError, match=match):  # values given for the class's fields
    check_field_types(_Fields, kw)


def test_check_field_types_accepts_good_values():
  check_field_types(_Fields())
  check_field_types(_Fields(n=np.int64(2), x=np.float32(0.5), flag=True, name="b"))
  check_field_types(_Fields(x=3))  # an integer is a number
  check_field_types(_Fields, {"n": 2})  # only the fields given
  check_field_types(_Fields(name=3), skip=("name",))  # left to the caller

  @dataclasses.dataclass
  class Other:
    t: tuple = ()
  with pytest.raises(TypeError, match="no type check for the annotation 'tuple'"):
    check_field_types(Other())


def test_get_config_and_from_dict_errors_are_flanjax_errors():
  with pytest.raises(FlanjaxError, match=r"Unknown model size 'tinyy'.*did you mean 'tiny'"):
    get_config("tinyy")
  with pytest.raises(FlanjaxError, match="Unknown model size 3"):
    get_config(3)
  with pytest.raises(FlanjaxError, match=r"unknown T5Config fields \['d_modle'\].*'d_model'"):
    get_config("tiny", d_modle=64)
  with pytest.raises(FlanjaxError, match=r"Unknown T5Config fields \['d_modle'\]"):
    T5Config.from_dict({"d_modle": 64})


TINY = "--gin_file=models/t5_1_1_tiny.gin"


@pytest.mark.parametrize("bindings,message", [
    ([TINY, "--gin.T5Config.d_model=-1"], "T5Config.d_model=-1 must be a positive integer."),
    ([TINY, "--gin.T5Config.d_model='64'"], "T5Config.d_model='64' must be an integer (gin "
                                            "binding T5Config.d_model); write it without quotes: "
                                            "--gin.T5Config.d_model=64."),
    ([TINY, "--gin.T5Config.feed_forward_proj='gelu2'"],
     "T5Config.feed_forward_proj='gelu2': use one of ('gated-gelu', 'relu')."),
    (["--gin.train.model_config=@t5_config()", "--gin.t5_config.size='tinyy'"],
     "Unknown model size 'tinyy'"),
    # The model file's T5Config bindings would be dropped: train reads t5_config's.
    ([TINY, "--gin.train.model_config=@t5_config()", "--gin.t5_config.size='tiny'"],
     "T5Config.d_ff, T5Config.d_model, T5Config.feed_forward_proj, T5Config.head_dim, "
     "T5Config.num_decoder_layers, T5Config.num_encoder_layers, T5Config.num_heads, "
     "T5Config.tie_word_embeddings, T5Config.vocab_size would be ignored (bound in "
     "models/t5_1_1_tiny.gin): train.model_config = @t5_config(), which reads its own "
     "bindings: bind --gin.t5_config.d_ff=128"),
])
def test_cli_prints_config_errors_on_one_line(tmp_path, bindings, message):
  exe = os.path.join(os.path.dirname(sys.executable), "flanjax")
  out = subprocess.run(
      [exe, "train", "--gin.train.synthetic_data=True",
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
