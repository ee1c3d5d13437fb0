"""gin: packaged model/run configs, flag parsing, one-line errors with the closest names."""
import glob
import os

import pytest

from flanjax import cli, gin_config
from flanjax.config import SIZES, T5Config, get_config
from flanjax.gin_config import ConfigError, gin
from flanjax.optimizers import OptimizerConfig


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _bound(name, param):
  return gin.query_parameter(f"{name}.{param}")


@pytest.mark.parametrize("size", sorted(SIZES))
def test_model_gin_files_match_config_sizes(size):
  gin_config.parse_gin([f"models/t5_1_1_{size}.gin"])
  assert gin.get_configurable("T5Config")() == get_config(size)


def test_t5_1_0_small():
  gin_config.parse_gin(["models/t5_1_0_small.gin"])
  c = gin.get_configurable("T5Config")()
  assert c.feed_forward_proj == "relu" and c.tie_word_embeddings and c.num_encoder_layers == 6


@pytest.mark.parametrize("run", ["runs/finetune.gin", "runs/pretrain_from_scratch.gin"])
def test_run_gin_files_parse_and_start_with_the_command(run):
  gin_config.parse_gin(["models/t5_1_1_base.gin", run])
  assert _bound("train", "mixture") == "flan2021"
  opt = gin.get_configurable("OptimizerConfig")()
  assert isinstance(opt, OptimizerConfig) and opt.name == "adafactor"
  text = open(os.path.join(gin_config.packaged_gin_dir(), run)).read()
  assert text.splitlines()[0].startswith("#") and "flanjax train --gin_file=" in text[:600]


def test_every_packaged_gin_file_parses():
  root = gin_config.packaged_gin_dir()
  files = sorted(glob.glob(os.path.join(root, "**", "*.gin"), recursive=True))
  assert len(files) >= 9
  for f in files:
    gin.clear_config()
    gin_config.parse_gin([f])


def test_bindings_and_search_paths(tmp_path):
  (tmp_path / "mine.gin").write_text("train.batch_size = 24\n")
  gin_config.parse_gin(["mine.gin", "models/t5_1_1_tiny.gin"],
                       ["T5Config.vocab_size = 128", "train.num_steps = 7"], [str(tmp_path)])
  assert _bound("train", "batch_size") == 24 and _bound("train", "num_steps") == 7
  assert gin.get_configurable("T5Config")() == get_config("tiny", vocab_size=128)
  assert isinstance(gin.get_configurable("T5Config")(), T5Config)


def test_unknown_names_give_one_line_with_the_closest():
  with pytest.raises(ConfigError, match=r"unknown gin configurable 'T5Confg'; did you mean "
                                        r"T5Config"):
    gin_config.parse_gin([], ["T5Confg.d_model = 3"])
  with pytest.raises(ConfigError, match=r"train has no parameter 'num_stepz'; did you mean "
                                        r"num_steps\?"):
    gin_config.parse_gin([], ["train.num_stepz = 3"])
  with pytest.raises(ConfigError, match=r"gin file 'models/t5_1_1_bse.gin' not found.*Closest: "
                                        r"models/t5_1_1_base.gin"):
    gin_config.parse_gin(["models/t5_1_1_bse.gin"])


def test_flag_parsing():
  args = gin_config.parse_train_flags([
      "--gin_file=a.gin", "--gin_file", "b.gin", "--gin.train.num_steps=5",
      "--gin.T5Config.dtype", '"float32"', "--model_dir=/m", "--gin_search_paths=/x,/y"])
  assert args.gin_file == ["a.gin", "b.gin"]
  assert args.gin_bindings == ["train.num_steps=5", 'T5Config.dtype="float32"']
  assert args.model_dir == "/m" and args.gin_search_paths == ["/x", "/y"]
  with pytest.raises(ConfigError, match=r"--model_dri \(did you mean --model_dir\?\)"):
    gin_config.parse_train_flags(["--model_dri=/m"])


def test_cli_prints_one_line_errors(capsys):
  assert cli.main(["train", "--gin.train.num_stepz=3", "--model_dir=/tmp/x"]) == 2
  err = capsys.readouterr().err.splitlines()
  assert err[0] == ("flanjax train: error: gin binding train.num_stepz: train has no parameter "
                    "'num_stepz'; did you mean num_steps?")
  gin.clear_config()
  assert cli.main(["train", "--gin_file=models/t5_1_1_tiny.gin",
                   "--gin.train.synthetic_data=True", "--gin.train.mesh_shape=(3, 1)",
                   "--model_dir=/tmp/never_written"]) == 2
  err = capsys.readouterr().err.splitlines()
  assert err[0].startswith("flanjax train: error: mesh_shape (3, 1) (3x1 = 3 devices) does not "
                           "match the 1 available devices")
  assert not os.path.exists("/tmp/never_written")


def test_packaged_gin_dir_uses_a_sibling_gin_only_in_a_source_checkout(tmp_path, monkeypatch):
  site = tmp_path / "site-packages"
  (site / "flanjax").mkdir(parents=True)
  (site / "gin" / "models").mkdir(parents=True)  # e.g. gin-config's package, not ours
  monkeypatch.setattr(gin_config, "_PKG_DIR", str(site / "flanjax"))
  with pytest.raises(ConfigError, match="gin files are missing"):
    gin_config.packaged_gin_dir()
  (site / "setup.py").write_text("")  # an editable install's repo root
  assert gin_config.packaged_gin_dir() == str(site / "gin")
  (site / "flanjax" / "gin" / "models").mkdir(parents=True)  # an installed package wins
  assert gin_config.packaged_gin_dir() == str(site / "flanjax" / "gin")
