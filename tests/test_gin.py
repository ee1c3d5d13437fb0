"""gin: packaged model/run configs, flag parsing, one-line errors with the closest names."""
import ast
import glob
import os

import pytest

from flanjax import cli, gin_config
from flanjax.config import SIZES, T5Config, get_config
from flanjax.errors import FlanjaxError
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
  # An absolute path is not looked up in the search paths: no hint about them.
  with pytest.raises(ConfigError, match=r"^gin file '/nonexistent/x.gin' does not exist; give "
                                        r"the path of a \.gin file\.$"):
    gin_config.parse_gin(["/nonexistent/x.gin"])


def test_flag_parsing():
  args = gin_config.parse_train_flags([
      "--gin_file=a.gin", "--gin_file", "b.gin", "--gin.train.num_steps=5",
      "--gin.T5Config.dtype", '"float32"', "--model_dir=/m", "--gin_search_paths=/x,/y"])
  assert args.gin_file == ["a.gin", "b.gin"]
  assert args.gin_bindings == ["train.num_steps=5", 'T5Config.dtype="float32"']
  assert args.model_dir == "/m" and args.gin_search_paths == ["/x", "/y"]
  with pytest.raises(ConfigError, match=r"--model_dri \(did you mean --model_dir\?\)"):
    gin_config.parse_train_flags(["--model_dri=/m"])
  # `launch/gpu_host.sh --gin_file=x.gin ...` (MODEL_DIR forgotten) and a second --model_dir
  # (argparse kept the last silently).
  with pytest.raises(ConfigError, match=r"^--model_dir='--gin_file=runs/finetune.gin' is a "
                                        r"flag, not a folder; the launch scripts take MODEL_DIR "
                                        r"first"):
    gin_config.parse_train_flags(["--model_dir=--gin_file=runs/finetune.gin", "--gin.x.y=1"])
  with pytest.raises(ConfigError, match=r"^--model_dir is given 2 times; give it once\.$"):
    gin_config.parse_train_flags(["--model_dir=/a", "--model_dir", "/b"])
  # An abbreviation is refused (argparse had expanded --model_d to --model_dir), naming the flag.
  with pytest.raises(ConfigError, match=r"unknown flag\(s\) --model_d \(did you mean "
                                        r"--model_dir\?\)"):
    gin_config.parse_train_flags(["--model_d", "/m"])
  # A train() argument given as a flag: its gin binding, with the value (quoted for a string).
  with pytest.raises(ConfigError, match=r"unknown flag\(s\) --num_steps \(did you mean "
                                        r"--gin.train.num_steps=10\?\); --mixture \(did you mean "
                                        r"--gin.train.mixture=\"'flan2021'\"\?\)"):
    gin_config.parse_train_flags(["--num_steps", "10", "--mixture=flan2021"])
  with pytest.raises(ConfigError, match=r"--synthetic_data \(did you mean "
                                        r"--gin.train.synthetic_data=True\?\); --mixture \(did you "
                                        r"mean --gin.train.mixture='\"it\'\"\'\"\'s\"'\?\)"):
    gin_config.parse_train_flags(["--synthetic_data", "--mixture", "it's"])
  with pytest.raises(ConfigError, match=r"--scan_layers \(did you mean "
                                        r"--gin.T5Config.scan_layers=True\?\); --learning_rate "
                                        r"\(did you mean --gin.OptimizerConfig.learning_rate=0.1\?"):
    gin_config.parse_train_flags(["--scan_layers", "--learning_rate", "0.1"])
  with pytest.raises(ConfigError, match=r"--optimizer \(did you mean "
                                        r"--gin.OptimizerConfig.name=\"'adamw'\"\?\); --model-dir "
                                        r"\(did you mean --model_dir\?\)"):
    gin_config.parse_train_flags(["--optimizer", "adamw", "--model-dir", "/m"])


def test_train_flag_values_are_checked_on_one_line(capsys):
  with pytest.raises(SystemExit) as e:
    gin_config.parse_train_flags(["--num_processes", "two"])
  assert e.value.code == 2
  assert capsys.readouterr().err == ("flanjax train: error: argument --num_processes: invalid int "
                                     "value: 'two'. Run 'flanjax train --help' for the flags.\n")


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


def test_unquoted_string_binding_says_how_to_quote():
  with pytest.raises(ConfigError) as e:
    gin_config.parse_gin([], ["train.batch_size=4", "train.mixture=offline_without_nli"])
  assert str(e.value) == (
      "gin binding --gin.train.mixture=offline_without_nli: 'offline_without_nli' is not a gin "
      "value (a Python literal: 4, True, 'text', [...], {...}, or a @reference); quote a string, "
      "e.g. --gin.train.mixture=\"'offline_without_nli'\".")
  with pytest.raises(ConfigError, match=r"^gin binding --gin.train.batch_size=abc: 'abc' is not"):
    gin_config.parse_gin([], ["train.batch_size=abc"])
  # A syntax error in the 2nd binding names that binding, not "line 2" of them joined.
  with pytest.raises(ConfigError, match=r"^gin binding --gin.train.mixture=\{'a': 1 'b'\}: "
                                        r"Expected ',' or '\}'.$"):
    gin_config.parse_gin([], ["train.num_steps=3", "train.mixture={'a': 1 'b'}"])
  with pytest.raises(ConfigError, match=r"^gin binding --gin.train.mixture=\['a': a bracket or "
                                        "string is never closed.$"):
    gin_config.parse_gin([], ["train.mixture=['a'"])


def test_errors_in_gin_files_name_the_file_and_its_line(tmp_path):
  inner = tmp_path / "inner.gin"
  inner.write_text("# mine\n\ntrain.num_steps = 3\ntrain.mixture = offline_without_nli\n")
  outer = tmp_path / "outer.gin"
  outer.write_text("include 'models/t5_1_1_tiny.gin'\ninclude 'inner.gin'\n")
  with pytest.raises(ConfigError) as e:
    gin_config.parse_gin([str(outer)], [], [str(tmp_path)])
  assert str(e.value) == (
      f"gin file {inner}, line 4 ('train.mixture = offline_without_nli'): 'offline_without_nli' "
      "is not a gin value (a Python literal: 4, True, 'text', [...], {...}, or a @reference); "
      "quote a string, e.g. train.mixture = 'offline_without_nli'.")
  inner.write_text("train.num_steps = 3\nT5Confg.d_model = 8\n")
  with pytest.raises(ConfigError, match=rf"^gin file {inner}, line 2: unknown gin configurable "
                                        "'T5Confg'; did you mean T5Config"):
    gin_config.parse_gin([str(outer)], [], [str(tmp_path)])
  inner.write_text("train.mixture = ('a',\n")
  with pytest.raises(ConfigError, match=rf"^gin file {outer} \(or a file it includes\): a "
                                        "bracket or string is never closed"):
    gin_config.parse_gin([str(outer)], [], [str(tmp_path)])
  outer.write_text("include 'models/t5_1_1_tinny.gin'\n")
  with pytest.raises(ConfigError, match=rf"^gin file {outer}, line 1: gin file "
                                        r"'models/t5_1_1_tinny.gin' not found.*Closest: "
                                        "models/t5_1_1_tiny.gin"):
    gin_config.parse_gin([str(outer)])


def test_include_from_the_search_path_logs_nothing(tmp_path, caplog, capfd):
  (tmp_path / "run.gin").write_text("include 'models/t5_1_1_tiny.gin'\ntrain.num_steps = 2\n")
  with caplog.at_level("INFO"):
    gin_config.parse_gin([str(tmp_path / "run.gin")])
  assert _bound("train", "num_steps") == 2 and gin.get_configurable("T5Config")().d_model == 64
  assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
  assert "Path not found" not in capfd.readouterr().err


def test_operative_config_never_replaces_the_users_config_gin(tmp_path, capsys):
  user = "# my notes\ninclude 'models/t5_1_1_tiny.gin'\ntrain.num_steps = 2\n"
  (tmp_path / "config.gin").write_text(user)
  gin_config.parse_gin(["models/t5_1_1_tiny.gin"])
  with pytest.raises(ConfigError, match=rf"^{tmp_path}/config.gin was not written by flanjax.*"
                                        "move it out of the model_dir"):
    gin_config.write_operative_config(str(tmp_path))
  # `flanjax train` refuses while parsing its flags, before any training.
  assert cli.main(["train", f"--gin_file={tmp_path}/config.gin",
                   f"--model_dir={tmp_path}"]) == 2
  assert "was not written by flanjax" in capsys.readouterr().err
  assert (tmp_path / "config.gin").read_text() == user
  # flanjax's own file (a re-run / resume) is rewritten, marker first.
  out = tmp_path / "run"
  gin.get_configurable("T5Config")()  # the operative config: what was called
  gin_config.write_operative_config(str(out))
  text = (out / "config.gin").read_text()
  assert text.startswith(gin_config.OPERATIVE_MARKER) and "T5Config.d_model = 64" in text
  gin_config.parse_train_flags([f"--model_dir={out}"])
  gin.clear_config()
  gin_config.parse_gin([str(out / "config.gin")], ["T5Config.d_model = 32"])
  gin.get_configurable("T5Config")()
  gin_config.write_operative_config(str(out))
  assert "T5Config.d_model = 32" in (out / "config.gin").read_text()
  # A run dir of a flanjax before the marker: gin's own operative text, beside flanjax_model.json.
  old = tmp_path / "old_run"
  old.mkdir()
  (old / "config.gin").write_text("# Parameters for T5Config:\n# ====\nT5Config.d_model = 64\n")
  with pytest.raises(ConfigError, match="was not written by flanjax"):
    gin_config.check_operative_config_target(str(old))  # no flanjax_model.json: not a run dir
  (old / "flanjax_model.json").write_text("{}")
  gin_config.check_operative_config_target(str(old))


@pytest.mark.parametrize("binding,message", [
    ("OptimizerConfig.learning_rate='1e-3'",
     "OptimizerConfig.learning_rate='1e-3' must be a number (gin binding "
     "OptimizerConfig.learning_rate); write it without quotes: "
     "--gin.OptimizerConfig.learning_rate=0.001."),
    ("OptimizerConfig.warmup_steps=1.5",
     "OptimizerConfig.warmup_steps=1.5 must be an integer (gin binding "
     "OptimizerConfig.warmup_steps)."),
    ("OptimizerConfig.momentum='none'",
     "OptimizerConfig.momentum='none' must be a number or None (gin binding "
     "OptimizerConfig.momentum)."),
    ("T5Config.scan_layers='True'",
     "T5Config.scan_layers='True' must be True or False (gin binding T5Config.scan_layers); "
     "write it without quotes: --gin.T5Config.scan_layers=True."),
    ("T5Config.dropout_rate='0.1'",
     "T5Config.dropout_rate='0.1' must be a number (gin binding T5Config.dropout_rate); write "
     "it without quotes: --gin.T5Config.dropout_rate=0.1."),
])
def test_config_built_by_gin_names_the_binding(binding, message):
  """The one field type check (config.check_field_types): a value bound in gin is named by its
  binding, with how to write a quoted literal; the same value passed in Python is not."""
  gin_config.parse_gin([], [binding])
  name, rest = binding.split(".", 1)
  field = rest.split("=", 1)[0]
  with pytest.raises(FlanjaxError) as e:
    gin.get_configurable(name)()
  assert str(e.value).splitlines()[0] == message
  cls = {"OptimizerConfig": OptimizerConfig, "T5Config": T5Config}[name]
  with pytest.raises(FlanjaxError) as e:
    cls(**{field: _bound(name, field)})  # the same value: it came from gin
  assert str(e.value) == message
  gin.clear_config()
  with pytest.raises(FlanjaxError) as e:  # the value from Python, not gin
    cls(**{field: ast.literal_eval(rest.split("=", 1)[1])})
  assert str(e.value) == message.split(" (gin binding")[0] + "."


def test_train_cli_checks_optimizer_bindings_gin_never_builds():
  """Without `train.optimizer = @OptimizerConfig()` gin never builds an OptimizerConfig, so the
  CLI checks the bindings of its fields itself, with the same message; references and macros
  are left to the built OptimizerConfig."""
  gin_config.parse_gin(["models/t5_1_1_tiny.gin"],
                       ["OptimizerConfig.learning_rate=1e-3", "OptimizerConfig.b1='0.9'"])
  with pytest.raises(FlanjaxError) as e:
    gin_config.check_train_bindings()
  assert str(e.value) == ("OptimizerConfig.b1='0.9' must be a number (gin binding "
                          "OptimizerConfig.b1); write it without quotes: "
                          "--gin.OptimizerConfig.b1=0.9.")
  gin.clear_config()
  gin_config.parse_gin([], ["LR = 1e-3", "OptimizerConfig.learning_rate = %LR",
                            "OptimizerConfig.name = 'adamw'"])
  gin_config.check_train_bindings()


def test_optimizer_bindings_without_train_optimizer_are_used():
  """A model file binds no `train.optimizer` (the runs/*.gin files do): OptimizerConfig
  bindings given with it alone were dropped and train ran on the defaults. The check binds
  `train.optimizer = @OptimizerConfig()` for them, and leaves a bound one (or a macro) alone."""
  gin_config.parse_gin(["models/t5_1_1_tiny.gin"], ["OptimizerConfig.learning_rate=0.01"])
  gin_config.check_train_bindings()
  ref = gin.query_parameter("train.optimizer")
  assert ref.configurable.name == "OptimizerConfig" and ref.evaluate
  assert gin.get_configurable("OptimizerConfig")().learning_rate == 0.01
  assert "train.optimizer = @OptimizerConfig()" in gin.config_str()
  gin.clear_config()
  gin_config.parse_gin(["models/t5_1_1_tiny.gin"])  # no OptimizerConfig bindings: nothing added
  gin_config.check_train_bindings()
  with pytest.raises(ValueError):
    gin.query_parameter("train.optimizer")
  gin.clear_config()
  gin_config.parse_gin(["models/t5_1_1_tiny.gin"],
                       ["OPT = @OptimizerConfig()", "train.optimizer = %OPT",
                        "OptimizerConfig.learning_rate=0.01"])
  gin_config.check_train_bindings()
  assert gin.query_parameter("train.optimizer").configurable.name == "macro"


def test_t5config_bindings_no_t5config_reads_are_refused():
  """T5Config bindings reach the model only through `train.model_config = @T5Config()`; with
  `@t5_config()` or no model config (a checkpoint's model) they would be dropped unseen."""
  gin_config.parse_gin([], ["train.model_config = @t5_config()", "t5_config.size = 'tiny'",
                            "T5Config.dropout_rate = 0.2"])
  with pytest.raises(ConfigError, match=r"^T5Config.dropout_rate would be ignored: "
                     r"train.model_config = @t5_config\(\), which reads its own bindings: "
                     r"bind --gin.t5_config.dropout_rate=0.2 instead.$"):
    gin_config.check_train_bindings()
  gin.clear_config()
  gin_config.parse_gin([], ["train.init_checkpoint = '/ckpt'", "T5Config.dropout_rate = 0.2",
                            "T5Config.scan_layers = True"])
  with pytest.raises(ConfigError) as e:
    gin_config.check_train_bindings()
  assert str(e.value).startswith("T5Config.dropout_rate, T5Config.scan_layers would be ignored: "
                                 "train.model_config is not bound")
  assert """--gin.train.model_overrides="{'dropout_rate': 0.2, 'scan_layers': True}\"""" in str(e.value)
  gin.clear_config()  # a model file, directly or through a macro: accepted
  gin_config.parse_gin(["models/t5_1_1_tiny.gin"], ["T5Config.dropout_rate = 0.2"])
  gin_config.check_train_bindings()
  gin.clear_config()
  gin_config.parse_gin([], ["MODEL = @T5Config()", "train.model_config = %MODEL",
                            "T5Config.dropout_rate = 0.2"])
  gin_config.check_train_bindings()


def test_a_gin_import_that_fails_is_one_line(tmp_path, monkeypatch):
  """`import my_taskz` (a typo) in a gin file, or a module with a syntax error imported by a gin
  file or --module: one line naming the gin file and line or the module's file, no traceback."""
  from flanjax import catalog
  from flanjax.errors import FlanjaxError
  monkeypatch.chdir(tmp_path)
  monkeypatch.syspath_prepend(str(tmp_path))
  (tmp_path / "a.gin").write_text("import h7_no_such_tasks\n")
  (tmp_path / "h7_syntax_tasks.py").write_text("def f(:\n")
  (tmp_path / "b.gin").write_text("train.batch_size = 2\nimport h7_syntax_tasks\n")
  (tmp_path / "h7_dep_tasks.py").write_text("import h7_no_such_dependency\n")
  (tmp_path / "c.gin").write_text("import h7_dep_tasks\n")
  with pytest.raises(ConfigError, match=(
      rf"^gin file {tmp_path}/c.gin, line 1: importing h7_dep_tasks failed: no module named "
      r"'h7_no_such_dependency' \(a module it imports; install it\)\.$")):
    gin_config.parse_gin([str(tmp_path / "c.gin")])
  with pytest.raises(ConfigError, match=(
      rf"^gin file {tmp_path}/a.gin, line 1: import: no module named 'h7_no_such_tasks' in the "
      rf"current folder \({tmp_path}\) or on the Python path")):
    gin_config.parse_gin([str(tmp_path / "a.gin")])
  with pytest.raises(ConfigError, match=(
      rf"^gin file {tmp_path}/b.gin: importing a module failed: .*\({tmp_path}/h7_syntax_tasks.py,"
      r" line 1\)\.$")):
    gin_config.parse_gin([str(tmp_path / "b.gin")])
  with pytest.raises(FlanjaxError, match=rf"^--module h7_syntax_tasks: .*\({tmp_path}/"
                                         r"h7_syntax_tasks.py, line 1\)\.$"):
    catalog.import_modules(["h7_syntax_tasks"])


def test_refused_model_bindings_name_the_gin_file_that_bound_them(tmp_path):
  """runs/pretrain_from_scratch.gin binds T5Config.dropout_rate for a models/*.gin file; with an
  init checkpoint and no model file that binding would be dropped, and the refusal says where
  it came from and which run file starts from a checkpoint."""
  gin_config.parse_gin(["runs/pretrain_from_scratch.gin"], ["train.init_checkpoint = '/ckpt'"])
  with pytest.raises(ConfigError) as e:
    gin_config.check_train_bindings()
  scratch = os.path.join("runs", "pretrain_from_scratch.gin")
  assert str(e.value).startswith(f"T5Config.dropout_rate would be ignored (bound in {scratch}): "
                                 "train.model_config is not bound")
  assert "to train from a checkpoint use runs/finetune.gin." in str(e.value)
  gin.clear_config()  # a user's file and a flag: each named where it came from
  (tmp_path / "mine.gin").write_text("T5Config.scan_layers = True\n")
  gin_config.parse_gin([str(tmp_path / "mine.gin")],
                       ["train.init_checkpoint = '/ckpt'", "T5Config.dropout_rate = 0.2"])
  with pytest.raises(ConfigError) as e:
    gin_config.check_train_bindings()
  assert str(e.value).startswith("T5Config.dropout_rate, T5Config.scan_layers would be ignored "
                                 f"(bound: T5Config.scan_layers in {tmp_path / 'mine.gin'}): ")
  assert "runs/finetune.gin" not in str(e.value)


def test_a_second_parse_does_not_keep_the_first_ones_bindings():
  """Two commands in one process (a notebook calling cli.main twice): the second sees only its
  own bindings, not a wrong one left by the first."""
  gin_config.parse_gin((), ["train.seed = -1"])
  gin_config.parse_gin((), ["train.batch_size = 4"])
  assert gin_config.bound_value("train", "seed") is None
  assert gin_config.bound_value("train", "batch_size") == 4
  gin_config.gin.clear_config()
