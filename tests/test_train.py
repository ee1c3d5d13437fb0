"""The trainer in one process: gradient accumulation, init from a checkpoint, frozen params,
NaN stop, periodic evaluation with keep-best, metrics files."""
import dataclasses
import glob
import json
import os
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import truncate_arrays
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from flanjax import checkpoints, losses, partitioning, synthetic
from flanjax import model as model_lib
from flanjax.config import get_config
from flanjax.errors import FlanjaxError
from flanjax.optimizers import OptimizerConfig
from flanjax.train import TrainingError, TrainState, make_train_step, train

CONFIG = get_config("tiny", vocab_size=128, dtype="float32")
LENGTHS = {"inputs": 24, "targets": 12}


def _run(model_dir, **kw):
  args = dict(model_dir=str(model_dir), model_config=CONFIG, synthetic_data=True,
              task_feature_lengths=LENGTHS, batch_size=8, num_steps=4, checkpoint_period=2,
              log_period=1, progress=False, async_checkpointing=False,
              optimizer=OptimizerConfig(learning_rate=1e-2))
  args.update(kw)
  return train(**args)


def _metrics(model_dir, split="train"):
  rows = [json.loads(x) for x in open(os.path.join(model_dir, "metrics.jsonl"))]
  return {r["step"]: r for r in rows if r["split"] == split}


@pytest.mark.parametrize("normalizer", ["num_real_target_tokens", 100.0])
def test_microbatches_give_the_full_batch_update(normalizer):
  mesh = partitioning.make_mesh((1, 1))
  params = model_lib.init_params(CONFIG, jax.random.PRNGKey(0))
  # A "transformation" that records the gradient it is given (and leaves params unchanged).
  tx = optax.GradientTransformation(
      lambda p: {"grad": jax.tree.map(jnp.zeros_like, p)},
      lambda g, state, p=None: (jax.tree.map(jnp.zeros_like, g), {"grad": g}))
  batch = synthetic.make_batch(CONFIG, 8, LENGTHS["inputs"], LENGTHS["targets"], 0, 0)
  rep = NamedSharding(mesh, P())
  outs = {}
  for m in (1, 4):
    fresh = jax.tree.map(jnp.copy, params)  # the step donates its state
    state = TrainState(step=jnp.zeros((), jnp.int32), params=fresh, opt_state=tx.init(fresh))
    shardings = jax.tree.map(lambda _: rep, state)
    step = make_train_step(CONFIG, tx, lambda s: 1.0, mesh=mesh,
                           rules=partitioning.STANDARD_LOGICAL_AXIS_RULES,
                           state_shardings=shardings, batch_keys=sorted(batch),
                           num_microbatches=m, loss_normalizer=normalizer)
    with jax.set_mesh(mesh):
      new, metrics = step(state, {k: jnp.asarray(v) for k, v in batch.items()}, True)
    outs[m] = (jax.device_get(new.opt_state["grad"]), jax.device_get(metrics))
  (g1, m1), (g4, m4) = outs[1], outs[4]
  np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-6)
  np.testing.assert_allclose(m1["accuracy"], m4["accuracy"], rtol=1e-6)
  np.testing.assert_allclose(m1["grad_norm"], m4["grad_norm"], rtol=1e-5)
  # Same gradient up to fp32 summation order: each tensor within 1e-5 of its norm, the rtol the
  # elements had. (Element by element, rounding is bounded by the magnitudes of the terms each
  # element sums, not by the element, so no per-element tolerance is safe: with T5X's
  # initialisers one element with cancellation differed by 4e-5 of itself, 1.3e-6 of its
  # tensor's largest entry. Norm-wise the worst tensor differs by ~1e-6. A microbatching bug,
  # such as a dropped or misweighted microbatch, moves a tensor by 1/4 to 1 of its norm.)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g4)):
    assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(a), (
        np.linalg.norm(a - b) / np.linalg.norm(a))
  assert max(float(np.abs(x).max()) for x in jax.tree.leaves(g1)) > 1e-4


def test_train_writes_metrics_checkpoints_and_resumes(tmp_path):
  out = _run(tmp_path, num_steps=4)
  rows = _metrics(tmp_path)
  assert sorted(rows) == [1, 2, 3, 4]
  for key in ("loss", "z_loss", "accuracy", "learning_rate", "grad_norm", "seqs_per_sec",
              "tokens_per_sec", "nonpad_fraction_inputs", "flops_per_step"):
    assert key in rows[4], key
  assert out["loss"] == pytest.approx(rows[4]["loss"])
  assert checkpoints.finalized_steps(tmp_path, ("params", "opt_state", "meta")) == [2, 4]
  assert os.path.isdir(tmp_path / "tensorboard" / "train")
  # Rerunning with more steps resumes at step 4 instead of starting over.
  _run(tmp_path, num_steps=6)
  rows = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
  info = checkpoints.read_model_info(tmp_path)
  assert info["model_config"]["d_model"] == CONFIG.d_model


def test_init_checkpoint_and_frozen_params(tmp_path):
  init = model_lib.init_params(CONFIG, jax.random.PRNGKey(7))
  checkpoints.save_pretrained(tmp_path / "init", jax.device_get(init), CONFIG, {"type": "byte"})
  # The first step's loss is that of the loaded params on synthetic batch 0.
  batch = synthetic.make_batch(CONFIG, 8, LENGTHS["inputs"], LENGTHS["targets"], 0, 0)
  inputs = {k: batch[k] for k in batch if k not in ("decoder_target_tokens",
                                                    "decoder_loss_weights")}
  logits = model_lib.T5(CONFIG).apply({"params": init}, **inputs)
  sums = losses.weighted_sums(logits, batch["decoder_target_tokens"],
                              batch["decoder_loss_weights"], z_loss=1e-4)
  expected = float(sums["loss"] / sums["weight"])
  _run(tmp_path / "run", model_config=None, init_checkpoint=str(tmp_path / "init"),
       trainable="decoder/.*", num_steps=2)
  assert _metrics(tmp_path / "run")[1]["loss"] == pytest.approx(expected, rel=1e-5)
  assert checkpoints.read_model_info(tmp_path / "run")["vocabulary"] == {"type": "byte"}
  _, trained, _ = checkpoints.load_pretrained(tmp_path / "run")
  for name in ("encoder", "token_embedder"):
    for a, b in zip(jax.tree.leaves(trained[name]), jax.tree.leaves(init[name])):
      np.testing.assert_array_equal(a, np.asarray(b))
  changed = [not np.array_equal(a, np.asarray(b))
             for a, b in zip(jax.tree.leaves(trained["decoder"]), jax.tree.leaves(init["decoder"]))]
  assert all(changed)


def test_a_resume_that_names_another_init_checkpoint_is_refused(tmp_path):
  """Each checkpoint records the checkpoint its run started from. A resume would continue from
  model_dir and never read init_checkpoint, so one that names another start is refused before
  anything is written; the same start, or none, resumes; a random start is recorded too."""
  for name, seed in (("a", 1), ("b", 2)):
    params = jax.device_get(model_lib.init_params(CONFIG, jax.random.PRNGKey(seed)))
    checkpoints.save_pretrained(tmp_path / name, params, CONFIG, {"type": "byte"})
  run = tmp_path / "run"
  _run(run, model_config=None, init_checkpoint=str(tmp_path / "a"), num_steps=2)
  info = (run / checkpoints.MODEL_INFO_FILE).read_bytes()
  with pytest.raises(FlanjaxError, match=(
      rf"^model_dir {run} step 2 was trained from {tmp_path / 'a'}, but init_checkpoint="
      rf"{tmp_path / 'b'}: a resume continues from step 2 and would not read it; use a new "
      r"--model_dir to start from it, or resume without init_checkpoint\. Nothing was changed")):
    _run(run, model_config=None, init_checkpoint=str(tmp_path / "b"), num_steps=4)
  assert checkpoints.finalized_steps(run) == [2]
  assert (run / checkpoints.MODEL_INFO_FILE).read_bytes() == info
  _run(run, model_config=None, init_checkpoint=str(tmp_path / "a" / "."), num_steps=3)
  _run(run, num_steps=4)  # without init_checkpoint: the recorded start is carried on
  with pytest.raises(FlanjaxError, match=r"was trained from .*/a, but init_checkpoint="):
    _run(run, init_checkpoint=str(tmp_path / "b"), num_steps=5)
  # The same command resumes once the start is gone (e.g. cleaned off a scratch disk): a resume
  # checks its name only.
  shutil.rmtree(tmp_path / "a")
  _run(run, model_config=None, init_checkpoint=str(tmp_path / "a"), num_steps=5)
  assert checkpoints.finalized_steps(run)[-1] == 5
  scratch = tmp_path / "scratch"
  _run(scratch, num_steps=2)
  with pytest.raises(FlanjaxError, match=r"step 2 was trained from a random initialisation, "
                                         r"but init_checkpoint="):
    _run(scratch, init_checkpoint=str(tmp_path / "a"), num_steps=4)


def test_grad_norm_reads_the_kernels_gradients_in_the_compute_dtype():
  # bf16 compute: the layers' kernel gradients enter the norm's `lax.cond` as bf16 (a cond's
  # operands are materialised: float32 there meant a float32 copy of every kernel gradient on
  # every step), and the metric is still the norm of the float32 gradients the optimizer gets.
  config = get_config("tiny", vocab_size=128, dtype="bfloat16")
  mesh = partitioning.make_mesh((1, 1))
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  tx = optax.GradientTransformation(  # records the gradient it is given
      lambda p: {"grad": jax.tree.map(jnp.zeros_like, p)},
      lambda g, state, p=None: (jax.tree.map(jnp.zeros_like, g), {"grad": g}))
  batch = synthetic.make_batch(config, 8, LENGTHS["inputs"], LENGTHS["targets"], 0, 0)
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))
  rep = NamedSharding(mesh, P())
  step = make_train_step(config, tx, lambda s: 1.0, mesh=mesh,
                         rules=partitioning.STANDARD_LOGICAL_AXIS_RULES,
                         state_shardings=jax.tree.map(lambda _: rep, state),
                         batch_keys=sorted(batch))
  with jax.set_mesh(mesh):
    jaxpr = jax.make_jaxpr(step)(state, batch, True)
    new, metrics = step(state, batch, True)
  grads = jax.device_get(new.opt_state["grad"])
  assert all(g.dtype == np.float32 for g in jax.tree.leaves(grads))
  np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-5)

  # The step's own cond, at the top level of its jit (not the attention kernels' inner ones).
  (jitted,) = [e for e in jaxpr.jaxpr.eqns if "jaxpr" in e.params]
  (cond,) = [e for e in jitted.params["jaxpr"].jaxpr.eqns if e.primitive.name == "cond"]
  dtypes = [str(v.aval.dtype) for v in cond.invars[1:]]
  kernels = 2 * 7 + 2 * 11  # 2 encoder layers of 7 kernels, 2 decoder layers of 11
  assert dtypes.count("bfloat16") == kernels, dtypes


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
  _run(tmp_path, num_steps=4)
  with pytest.raises(TrainingError, match=r"NaN/Inf loss at step 5.*last good checkpoint is "
                                          r"step 4"):
    _run(tmp_path, num_steps=8, z_loss=float("nan"))
  assert checkpoints.finalized_steps(tmp_path, ("params", "opt_state", "meta")) == [2, 4]


def test_norm_metrics_only_on_logged_and_saved_steps(tmp_path):
  # log_period 3, checkpoint_period 5: the norms on the first step, the logged 3 and 6, the
  # saved 5 and the last; every step's row otherwise, and the same training either way.
  _run(tmp_path / "a", num_steps=7, log_period=3, checkpoint_period=5)
  _run(tmp_path / "b", num_steps=7, log_period=3, checkpoint_period=5,
       norm_metrics_every_step=True)
  a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
  assert sorted(a) == sorted(b) == list(range(1, 8))
  assert [s for s in a if "grad_norm" in a[s]] == [1, 3, 5, 6, 7]
  assert [s for s in a if "param_norm" in a[s]] == [1, 3, 5, 6, 7]
  assert all("grad_norm" in b[s] and "param_norm" in b[s] for s in b)
  for s in a:
    assert a[s]["loss"] == b[s]["loss"]
    for key in ("grad_norm", "param_norm"):
      if key in a[s]:
        assert a[s][key] == b[s][key] and np.isfinite(a[s][key]) and a[s][key] > 0


def test_params_are_checked_before_a_save_without_norms(tmp_path):
  from flanjax import train as train_module
  manager = checkpoints.TrainCheckpointManager(tmp_path, save_period=1, keep=1)
  params = {"a": jnp.ones((3,)), "b": {"c": jnp.zeros((2, 2))}}
  train_module._check_params_finite(params, 7, manager, tmp_path)  # finite: no error
  params["b"]["c"] = params["b"]["c"].at[0, 1].set(jnp.inf)
  with pytest.raises(TrainingError, match=r"NaN/Inf params after step 7; not saving them.*"
                                          r"last good checkpoint is none"):
    train_module._check_params_finite(params, 7, manager, tmp_path)
  manager.close()


def test_out_of_memory_names_the_fixes_and_keeps_checkpoints(tmp_path, monkeypatch):
  _run(tmp_path, num_steps=2)
  from flanjax import train as train_module

  def oom_step(*args, **kw):
    def step(state, batch, with_norms):
      raise jax.errors.JaxRuntimeError(
          "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 70.46GiB with allocator "
          "GPU_0_bfc on device 0.")
    return step
  monkeypatch.setattr(train_module, "make_train_step", oom_step)
  with pytest.raises(FlanjaxError, match=r"out of accelerator memory at step 3 with "
                                         r"batch_size=8, num_microbatches=1 .*70.46GiB.*latest: "
                                         r"2\).*num_microbatches.*XLA_PYTHON_CLIENT_MEM_FRACTION"):
    _run(tmp_path, num_steps=4)
  assert checkpoints.finalized_steps(tmp_path, ("params", "opt_state", "meta")) == [2]


def test_a_run_that_fails_before_writing_leaves_no_empty_model_dir(tmp_path, monkeypatch):
  """e.g. a mixture whose TFDS data is not prepared: the folders the run made are removed again
  when they hold nothing; a model_dir that was there stays."""
  from flanjax import train as train_module

  def unprepared(**kwargs):
    raise FlanjaxError("TFDS dataset 'x' is not prepared")
  monkeypatch.setattr(train_module, "_DataStream", unprepared)
  with pytest.raises(FlanjaxError, match="not prepared"):
    _run(tmp_path / "new" / "run")
  assert os.listdir(tmp_path) == []

  def other_job_too(**kwargs):  # another job makes its (empty) folder beside it meanwhile
    (tmp_path / "new" / "other").mkdir()
    unprepared()
  monkeypatch.setattr(train_module, "_DataStream", other_job_too)
  with pytest.raises(FlanjaxError, match="not prepared"):
    _run(tmp_path / "new" / "run")
  assert os.listdir(tmp_path / "new") == ["other"]
  (tmp_path / "new" / "other").rmdir()
  (tmp_path / "new").rmdir()
  monkeypatch.setattr(train_module, "_DataStream", unprepared)
  (tmp_path / "mine").mkdir()
  with pytest.raises(FlanjaxError, match="not prepared"):
    _run(tmp_path / "mine")
  assert os.listdir(tmp_path) == ["mine"]


def test_periodic_eval_and_keep_best(tmp_path):
  scores = {2: 5.0, 4: 1.0, 6: 2.0, 8: 0.5}
  calls = []

  def eval_fn(step, params):
    calls.append(step)
    assert jax.tree.leaves(params)
    return {"score": scores[step]}

  _run(tmp_path, num_steps=8, eval_period=2, eval_fn=eval_fn, keep_checkpoints=1, keep_best=1,
       best_metric="score")
  assert calls == [2, 4, 6, 8]
  # Kept: the latest (8) and the best by score (2).
  assert checkpoints.finalized_steps(tmp_path) == [2, 8]
  assert _metrics(tmp_path, "eval")[4]["score"] == 1.0


def test_keep_best_survives_a_resume(tmp_path):
  """The evaluated steps' metrics are saved with them (Orbax's `metrics` item), so a resumed
  run still knows step 2 is the best and keeps it; they had lived in memory only, and the
  resume's first save deleted step 2."""
  scores = {2: 5.0, 4: 1.0, 6: 2.0, 8: 0.5}
  kw = dict(eval_period=2, eval_fn=lambda step, params: {"score": scores[step]},
            keep_checkpoints=1, keep_best=1, best_metric="score")
  _run(tmp_path, num_steps=4, **kw)
  assert checkpoints.finalized_steps(tmp_path) == [2, 4]
  assert json.load(open(tmp_path / "2" / "metrics" / "metrics")) == {"score": 5.0}
  _run(tmp_path, num_steps=8, **kw)
  assert checkpoints.finalized_steps(tmp_path) == [2, 8]


def test_a_failing_eval_keeps_the_steps_checkpoint(tmp_path):
  """An evaluation that raises (an unprepared eval split, an out-of-memory decode) comes after
  the step's checkpoint: rerunning resumes from it instead of training the period again."""
  def eval_fn(step, params):
    raise FlanjaxError("eval split not prepared")

  with pytest.raises(FlanjaxError, match="eval split not prepared"):
    _run(tmp_path, num_steps=6, checkpoint_period=3, eval_period=3, eval_fn=eval_fn)
  assert checkpoints.finalized_steps(tmp_path) == [3]


def test_bad_batch_and_config_errors(tmp_path):
  with pytest.raises(FlanjaxError, match="num_microbatches=3"):
    _run(tmp_path, num_microbatches=3)
  with pytest.raises(FlanjaxError, match="mixture"):
    _run(tmp_path, synthetic_data=False)
  with pytest.raises(FlanjaxError, match="model_dir"):
    train(model_dir=None, model_config=CONFIG, synthetic_data=True)
  with pytest.raises(FlanjaxError, match="loss_stats_impl='fast': use one of"):
    _run(tmp_path, loss_stats_impl="fast")


def _hlo_matmul_flops(config, te, td):
  """2 * out * contracted, summed over the dot_generals of the jitted forward pass (the
  relative-position one-hot lookup [.., buckets] x [heads, buckets] excluded)."""
  import re
  f = lambda p, e, d: model_lib.T5(config).apply({"params": p}, e, d)
  text = jax.jit(f).lower(model_lib.param_shapes(config),
                          jax.ShapeDtypeStruct((1, te), jnp.int32),
                          jax.ShapeDtypeStruct((1, td), jnp.int32)).as_text()
  total = 0
  for line in text.splitlines():
    if "dot_general" not in line:
      continue
    cdims = [int(x) for x in re.search(r"contracting_dims = \[([\d, ]*)\] x", line)
             .group(1).split(",")]
    shapes = [[int(v) for v in s.rstrip("x").split("x")]
              for s in re.findall(r"tensor<((?:\d+x)+)f32>", line)]
    lhs, rhs, out = shapes[0], shapes[1], shapes[-1]
    if rhs == [config.num_heads, config.relative_attention_num_buckets]:
      continue
    total += 2 * int(np.prod(out)) * int(np.prod([lhs[c] for c in cdims]))
  return total


@pytest.mark.parametrize("ff,tied", [("gated-gelu", False), ("relu", True)])
def test_flop_count_equals_the_compiled_matmuls(ff, tied):
  from flanjax import flops
  # Every dimension distinct (d_model 48, heads x head_dim 64, d_ff 96, vocab 112, lengths 24
  # and 12), so a count that swaps two of them fails.
  config = get_config("tiny", vocab_size=112, dtype="float32", num_decoder_layers=3,
                      d_model=48, num_heads=4, head_dim=16, d_ff=96,
                      feed_forward_proj=ff, tie_word_embeddings=tied)
  want = _hlo_matmul_flops(config, 24, 12)
  assert flops.t5_forward_flops_per_sequence(config, 24, 12) == want
  assert flops.t5_train_flops_per_sequence(config, 24, 12) == 3 * want


def test_peak_flops_and_mfu():
  from flanjax import flops
  assert flops.peak_flops_per_device("NVIDIA H100 80GB HBM3") == 989e12
  # Whole words: the PCIe/NVL H100s are slower; "L4" is not "L40S" (it had matched both).
  assert flops.peak_flops_per_device("NVIDIA H100 PCIe") == 756e12
  assert flops.peak_flops_per_device("NVIDIA H100 NVL") == 835e12
  assert flops.peak_flops_per_device("NVIDIA L40S") == 362e12
  assert flops.peak_flops_per_device("NVIDIA L40") == 181e12
  assert flops.peak_flops_per_device("NVIDIA L4") == 121e12
  assert flops.peak_flops_per_device("TPU v5 lite") == 197e12
  assert flops.peak_flops_per_device("TPU v4") == 275e12
  assert flops.peak_flops_per_device("cpu") is None
  assert flops.peak_flops_per_device("cpu", override=1e12) == 1e12
  assert flops.mfu(989e12, 1.0, 2, 989e12) == pytest.approx(0.5)
  assert flops.mfu(1.0, 1.0, 1, None) is None


@pytest.mark.slow
def test_offline_mixture_with_periodic_seqio_eval(tmp_path):
  out = _run(tmp_path, model_config=get_config("tiny", vocab_size=1024, dtype="float32"),
             synthetic_data=False, mixture="offline_without_nli",
             task_feature_lengths={"inputs": 64, "targets": 16}, eval_period=2,
             eval_mixture="offline_heldout_nli", eval_max_examples=4, keep_checkpoints=1,
             keep_best=1, best_metric="average")
  assert np.isfinite(out["loss"])
  evals = _metrics(tmp_path, "eval")
  assert sorted(evals) == [2, 4]
  assert "cluster/nli" in evals[2] and "average" in evals[2]
  assert os.path.exists(tmp_path / "eval" / "step_4" / "metrics.json")
  # The latest, plus step 2 if it was strictly better (on a tie the later step is the best).
  want = {2, 4} if evals[2]["average"] > evals[4]["average"] else {4}
  assert set(checkpoints.finalized_steps(tmp_path)) == want
  assert checkpoints.read_model_info(tmp_path)["vocabulary"]["type"] == "sentencepiece"
  with pytest.raises(FlanjaxError, match="vocab_size=128; set T5Config.vocab_size >= "):
    _run(tmp_path / "small_vocab", synthetic_data=False, mixture="offline")


def test_training_into_a_converted_checkpoint_refuses_and_keeps_it(tmp_path):
  init = jax.device_get(model_lib.init_params(CONFIG, jax.random.PRNGKey(3)))
  checkpoints.save_pretrained(tmp_path, init, CONFIG, {"type": "byte"})
  for kw in ({}, {"model_config": None}):  # with a config, and with the saved one
    with pytest.raises(FlanjaxError, match=r"pretrained/converted checkpoint .*"
                                           r"--gin.train.init_checkpoint=.* new --model_dir"):
      _run(tmp_path, keep_checkpoints=1, **kw)
  assert checkpoints.finalized_steps(tmp_path) == [0]
  _, params, _ = checkpoints.load_pretrained(tmp_path)
  jax.tree.map(np.testing.assert_array_equal, params, init)
  assert not os.path.exists(tmp_path / "metrics.jsonl")


@pytest.mark.parametrize("change,match", [
    ({"seed": 1}, r"seed=1 \(checkpoint: 0\)"),
    ({"batch_size": 4}, r"batch_size=4 \(checkpoint: 8\)"),
    ({"pack": False}, r"pack=False \(checkpoint: True\)"),
    ({"task_feature_lengths": {"inputs": 16, "targets": 12}}, "task_feature_lengths="),
    # Synthetic batches with a mixture named are recorded as synthetic, not as the mixture.
    ({"synthetic_data": False}, r"mixture='offline_without_nli' \(checkpoint: 'synthetic'\)"),
])
def test_resume_with_other_data_settings_is_an_error(tmp_path, change, match):
  config = get_config("tiny", vocab_size=1024, dtype="float32")  # the offline mixture's
  # Synthetic data, with a mixture named.
  _run(tmp_path, num_steps=2, mixture="offline_without_nli", model_config=config)
  change = {"mixture": "offline_without_nli", "model_config": config, **change}
  meta = json.load(open(tmp_path / "2" / "meta" / "metadata"))
  assert meta["pack"] is True and meta["task_feature_lengths"] == LENGTHS
  with pytest.raises(FlanjaxError, match=match + r".*use a new --model_dir, or the same "
                                                 r"settings to resume"):
    _run(tmp_path, num_steps=4, **change)
  assert checkpoints.finalized_steps(tmp_path) == [2]


def test_resume_of_a_checkpoint_without_the_new_meta_keys(tmp_path):
  _run(tmp_path, num_steps=2)
  path = tmp_path / "2" / "meta" / "metadata"
  meta = json.load(open(path))
  for key in ("task_feature_lengths", "pack", "mixture"):
    del meta[key]
  path.write_text(json.dumps(meta))
  _run(tmp_path, num_steps=4)
  assert sorted(_metrics(tmp_path)) == [1, 2, 3, 4]


def test_scan_layers_is_a_layout_the_training_is_the_same(tmp_path):
  """A scanned model trains as its unscanned twin: the same initial params (one seed), the same
  Adafactor updates (its clipping and parameter scale per layer of a scanned stack, T5X's
  rule), so the same losses and params after a few steps, up to float32 rounding."""
  _run(tmp_path / "flat", num_steps=3)
  _run(tmp_path / "scan", num_steps=3, model_overrides={"scan_layers": True})
  flat, scan = _metrics(tmp_path / "flat"), _metrics(tmp_path / "scan")
  for step in (1, 2, 3):
    assert scan[step]["loss"] == pytest.approx(flat[step]["loss"], rel=1e-5)
  assert flat[3]["loss"] < flat[1]["loss"]  # it trained
  _, p_flat, _ = checkpoints.load_pretrained(tmp_path / "flat")
  scan_config, p_scan, _ = checkpoints.load_pretrained(tmp_path / "scan")
  p_scan = model_lib.unscan_params(p_scan, scan_config)
  assert jax.tree.structure(p_scan) == jax.tree.structure(p_flat)
  for a, b in zip(jax.tree.leaves(p_scan), jax.tree.leaves(p_flat)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_changing_scan_layers_on_resume_is_a_clear_error(tmp_path):
  _run(tmp_path, num_steps=2)
  with pytest.raises(FlanjaxError, match=r"different model \(fields \['scan_layers'\]"):
    _run(tmp_path, num_steps=4, model_overrides={"scan_layers": True})


def test_resume_with_another_optimizer_state_layout_is_a_clear_error(tmp_path, monkeypatch):
  _run(tmp_path, num_steps=2, optimizer=OptimizerConfig(learning_rate=1e-2, stacked_layers=False))
  # The checkpoint records its OptimizerConfig: the setting that changed is named up front.
  with pytest.raises(FlanjaxError, match=r"step 2 holds another optimizer state than this run's "
                                         r"settings make \(stacked_layers=True \(checkpoint: "
                                         r"False\)\); resume with the checkpoint's optimizer"):
    _run(tmp_path, num_steps=4)
  # Checkpoints of earlier flanjax record none: the restore's layout check says it.
  from flanjax import train as train_lib
  with monkeypatch.context() as m:
    m.setattr(train_lib, "OPT_KEY", "not_recorded")
    with pytest.raises(checkpoints.CheckpointError, match="another layout.*stacked_layers=False"):
      _run(tmp_path, num_steps=4)
  assert checkpoints.TrainCheckpointManager(str(tmp_path)).latest_step() == 2  # kept
  _run(tmp_path, num_steps=4, optimizer=OptimizerConfig(learning_rate=1e-2,
                                                        stacked_layers=False))
  assert sorted(_metrics(tmp_path)) == [1, 2, 3, 4]


def test_unknown_best_metric_lists_the_eval_metrics(tmp_path):
  with pytest.raises(FlanjaxError, match=r"best_metric='acc' is not among the evaluation "
                                         r"metrics \['average', 'score'\]"):
    _run(tmp_path, num_steps=2, eval_period=1, keep_best=1, best_metric="acc",
         eval_fn=lambda step, params: {"score": 1.0, "average": 2.0})


@pytest.mark.parametrize("name", ["log_period", "checkpoint_period", "num_steps", "batch_size"])
def test_periods_and_sizes_must_be_positive(tmp_path, name):
  with pytest.raises(FlanjaxError, match=f"train: {name}=0 must be an integer >= 1"):
    _run(tmp_path, **{name: 0})
  assert not os.path.exists(tmp_path / "flanjax_model.json")


def test_tfds_data_dir_is_set_through_seqio(tmp_path):
  seqio = pytest.importorskip("seqio")
  from seqio import utils as seqio_utils
  old = seqio_utils._TFDS_DATA_DIR_OVERRIDE
  try:
    _run(tmp_path, num_steps=1, tfds_data_dir=str(tmp_path / "tfds"))
    assert seqio_utils._TFDS_DATA_DIR_OVERRIDE == str(tmp_path / "tfds")
  finally:
    seqio.set_tfds_data_dir_override(old)


def test_metrics_jsonl_drops_rows_after_the_resumed_step(tmp_path):
  from flanjax import summaries
  path = tmp_path / "metrics.jsonl"
  rows = [{"step": s, "split": "train", "loss": float(s)} for s in (1, 2, 3, 4)]
  rows.append({"step": 2, "split": "eval", "score": 1.0})
  path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 5, "spl')  # torn line
  writer = summaries.MetricsWriter(str(tmp_path), total_steps=6, initial_step=2,
                                   tensorboard=False, progress=False)
  writer.write(3, {"loss": 30.0})
  writer.close()
  got = [json.loads(x) for x in open(path)]
  assert [(r["step"], r["split"]) for r in got] == [(1, "train"), (2, "train"), (2, "eval"),
                                                    (3, "train")]
  assert got[-1]["loss"] == 30.0
  assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_progress_is_one_line_per_logged_step_off_a_terminal(tmp_path, capsys):
  """Cluster logs (stderr not a terminal) and `progress=False` get a plain line per logged step,
  not a tqdm bar's carriage returns."""
  from flanjax import summaries
  row = {"loss": 2.34567, "tokens_per_sec": 520712.4, "mfu": 0.3601, "steps_per_sec": 12.5}
  assert summaries.progress_line(100, 30000, row) == (
      "step 100/30000, loss 2.3457, 520,712 tok/s, MFU 36.0 %, 80.0 ms/step, ETA 0:39:52")
  assert summaries.progress_line(5, 5, {"loss": 1.0}) == "step 5/5, loss 1.0000"
  for progress in (True, False):  # pytest's stderr is not a terminal
    writer = summaries.MetricsWriter(str(tmp_path), total_steps=4, tensorboard=False,
                                     progress=progress)
    writer.progress(1, {"loss": 3.5, "steps_per_sec": 0.05})  # the compile's window
    writer.progress(2, {"loss": 3.0, "steps_per_sec": 2.0})
    writer.close()
    assert capsys.readouterr().err == ("step 1/4, loss 3.5000, 20.0 s a step with the compile\n"
                                       "step 2/4, loss 3.0000, 500.0 ms/step, ETA 0:00:01\n")


@pytest.mark.slow
def test_resume_restores_the_saved_data_stream_or_skips_without_it(tmp_path, capsys):
  """The mixture's tf.data position is saved with each checkpoint and restored on resume; a
  checkpoint without it resumes by skipping. Both give the uninterrupted run's losses."""
  import shutil
  kw = dict(model_config=get_config("tiny", vocab_size=1024, dtype="float32"),
            synthetic_data=False, mixture="offline_without_nli",
            task_feature_lengths={"inputs": 32, "targets": 8}, keep_checkpoints=1)
  _run(tmp_path / "straight", num_steps=6, **kw)
  _run(tmp_path / "saved", num_steps=4, **kw)
  assert os.listdir(tmp_path / "saved" / "data_state") == ["4"]  # step 2's went with its ckpt
  shutil.copytree(tmp_path / "saved", tmp_path / "skipped")
  shutil.rmtree(tmp_path / "skipped" / "data_state")
  # A damaged state (e.g. a copy cut short) is not a dead end: the resume skips instead.
  shutil.copytree(tmp_path / "saved", tmp_path / "damaged")
  state = glob.glob(str(tmp_path / "damaged" / "data_state" / "4" / "*" / "state.data-*"))[0]
  with open(state, "r+b") as f:
    f.truncate(os.path.getsize(state) // 2)
  capsys.readouterr()
  _run(tmp_path / "saved", num_steps=6, **kw)
  assert "skipping" not in capsys.readouterr().err
  _run(tmp_path / "skipped", num_steps=6, **kw)
  assert "skipping the first 4 batches" in capsys.readouterr().err
  _run(tmp_path / "damaged", num_steps=6, **kw)
  assert re.search(r"warning: the saved data state of step 4 could not be restored \(.+\): "
                   r"re-reading and skipping the first 4 batches", capsys.readouterr().err)
  want = _metrics(tmp_path / "straight")
  for name in ("saved", "skipped", "damaged"):
    got = _metrics(tmp_path / name)
    assert [got[s]["loss"] for s in (5, 6)] == [want[s]["loss"] for s in (5, 6)], name
  assert sorted(os.listdir(tmp_path / "saved" / "data_state")) == ["6"]


def test_numbered_folders_of_the_user_are_refused_before_anything_is_written(tmp_path):
  """Orbax would take 2023/ and 2024/ for checkpoint steps and delete them (keep_checkpoints)."""
  os.makedirs(tmp_path / "2023")
  (tmp_path / "2023" / "report.csv").write_text("x")
  os.makedirs(tmp_path / "2024")
  with pytest.raises(FlanjaxError, match=r"holds entries that are not flanjax checkpoint steps: "
                                         r"2023/ \(holds report.csv\), 2024/ \(empty\)"):
    _run(tmp_path, num_steps=8, keep_checkpoints=1)
  assert sorted(os.listdir(tmp_path)) == ["2023", "2024"]
  assert (tmp_path / "2023" / "report.csv").read_text() == "x"


def test_model_dir_must_be_a_writable_folder(tmp_path, monkeypatch):
  (tmp_path / "afile").write_text("x")
  with pytest.raises(FlanjaxError, match=r"model_dir .*afile is a file, not a folder"):
    _run(tmp_path / "afile")
  with pytest.raises(FlanjaxError, match=r"model_dir .*afile/run: .*afile is a file, not a folder"):
    _run(tmp_path / "afile" / "run")
  import errno
  import tempfile

  def read_only(*args, **kw):
    raise OSError(errno.EROFS, "Read-only file system")
  monkeypatch.setattr(tempfile, "mkstemp", read_only)
  with pytest.raises(FlanjaxError, match=r"model_dir .*ro is not writable \(Read-only file "
                                         r"system\)"):
    _run(tmp_path / "ro")
  assert sorted(os.listdir(tmp_path)) == ["afile"]


@pytest.mark.parametrize("change,fields", [
    ({"relative_attention_num_buckets": 16}, ["relative_attention_num_buckets"]),
    ({"layer_norm_epsilon": 1e-5, "d_ff": 96}, ["d_ff", "layer_norm_epsilon"]),
    ({"param_dtype": "bfloat16"}, ["param_dtype"]),
])
def test_resuming_another_model_changes_nothing(tmp_path, change, fields):
  import re
  _run(tmp_path, num_steps=2)
  info = (tmp_path / "flanjax_model.json").read_bytes()
  binds = " ".join(f"--gin.T5Config.{f}={getattr(CONFIG, f)!r}" if f != "param_dtype" else
                   f"--gin.T5Config.{f}=\"{getattr(CONFIG, f)!r}\"" for f in fields)
  with pytest.raises(FlanjaxError, match=r"holds checkpoints of a different model \(fields "
                                         + re.escape(str(fields)) + r" differ: .*\(checkpoint: "
                                         r".*saved in its flanjax_model.json \("
                                         + re.escape(binds) + r", or leave out .*"
                                         r"use a new --model_dir\. Nothing was changed"):
    _run(tmp_path, num_steps=4, model_config=CONFIG.replace(**change))
  assert (tmp_path / "flanjax_model.json").read_bytes() == info
  assert checkpoints.finalized_steps(tmp_path) == [2]


def test_resume_may_change_speed_and_precision_settings(tmp_path):
  _run(tmp_path, num_steps=2)
  _run(tmp_path, num_steps=3, model_config=CONFIG.replace(dtype="bfloat16", dropout_rate=0.1,
                                                          remat_policy="full"))
  saved = checkpoints.read_model_info(tmp_path)["model_config"]
  assert (saved["dtype"], saved["dropout_rate"]) == ("bfloat16", 0.1)
  assert checkpoints.finalized_steps(tmp_path) == [2, 3]


def test_a_resume_with_other_optimizer_settings_says_so(tmp_path, capsys):
  """Checkpoints record the OptimizerConfig; a resume with other settings (a new schedule for
  more steps is fine) is noted on one line, not silently taken."""
  _run(tmp_path, num_steps=2)
  capsys.readouterr()
  _run(tmp_path, num_steps=3)
  assert "other optimizer settings" not in capsys.readouterr().err
  _run(tmp_path, num_steps=4, optimizer=OptimizerConfig(learning_rate=3e-3, warmup_steps=1))
  out = capsys.readouterr().err
  assert (f"note: resuming {tmp_path} at step 3 with other optimizer settings than its "
          "checkpoints': learning_rate=0.003 (checkpoint: 0.01), warmup_steps=1 (checkpoint: "
          "0); the optimizer state carries on.") in out
  # A cosine schedule decays over num_steps unless decay_steps is set: more steps on resume
  # change the rate at the resume point, which is said, with how to keep the schedule.
  cosine = OptimizerConfig(learning_rate=1e-2, schedule="cosine")
  run = tmp_path / "cosine"
  _run(run, num_steps=2, optimizer=cosine)
  capsys.readouterr()
  _run(run, num_steps=3, optimizer=cosine)
  assert (f"note: resuming {run} at step 2 with num_steps=3: the cosine learning-rate schedule "
          "now decays over 3 steps (checkpoint: 2), so the rate changes at step 2; set "
          "OptimizerConfig.decay_steps=2 to keep the checkpoints' schedule.") in (
              capsys.readouterr().err)
  _run(run, num_steps=4, optimizer=dataclasses.replace(cosine, decay_steps=3))
  assert "schedule now decays" not in capsys.readouterr().err  # the optimizer note says it
  # Settings that make another optimizer state cannot carry on: refused before the restore,
  # naming what changed; nothing is written.
  for other, change in ((dict(name="adamw"), "name='adamw' (checkpoint: 'adafactor')"),
                        (dict(max_grad_norm=1.0), "max_grad_norm=1.0 (checkpoint: None)"),
                        (dict(clipping_threshold=None),
                         "clipping_threshold=None (checkpoint: 1.0)")):
    with pytest.raises(FlanjaxError, match=(
        r"step 4 holds another optimizer state than this run's settings make \("
        + re.escape(change) + r".*\); resume with the checkpoint's optimizer settings, or start "
        r"a new --model_dir from its parameters .*Nothing was changed\.$")):
      _run(tmp_path, num_steps=5, optimizer=OptimizerConfig(learning_rate=3e-3, warmup_steps=1,
                                                            **other))
  assert checkpoints.finalized_steps(tmp_path) == [2, 3, 4]  # the runs' final steps are saved


def test_a_refused_resume_keeps_the_recorded_vocabulary(tmp_path):
  init = jax.device_get(model_lib.init_params(CONFIG, jax.random.PRNGKey(3)))
  checkpoints.save_pretrained(tmp_path / "byte", init, CONFIG, {"type": "byte"})
  checkpoints.save_pretrained(tmp_path / "spm", init, CONFIG, "/x/spm.model")
  run = tmp_path / "run"
  _run(run, model_config=None, init_checkpoint=str(tmp_path / "byte"), num_steps=2)
  _run(run, num_steps=3)  # a resume without init_checkpoint keeps the recorded vocabulary
  assert checkpoints.read_model_info(run)["vocabulary"] == {"type": "byte"}
  info = (run / "flanjax_model.json").read_bytes()
  # A resume reads no init_checkpoint (so not its vocabulary): another one is refused as such.
  with pytest.raises(FlanjaxError, match=r"step 3 was trained from .*/byte, but init_checkpoint="
                                         r".*/spm: a resume continues from step 3"):
    _run(run, init_checkpoint=str(tmp_path / "spm"), num_steps=4)
  assert (run / "flanjax_model.json").read_bytes() == info


def test_resuming_a_damaged_step_names_it_and_how_to_go_on(tmp_path):
  _run(tmp_path, num_steps=3, checkpoint_period=1)
  info = (tmp_path / "flanjax_model.json").read_bytes()
  (tmp_path / "3" / "meta" / "metadata").write_text("garbage")
  with pytest.raises(FlanjaxError, match=rf"checkpoint step 3 in {tmp_path} is unreadable \("
                                         r"meta/: JSONDecodeError: Expecting value.*\); move it "
                                         rf"aside \(e.g. mv {tmp_path}/3 {tmp_path}/3.bad\) to "
                                         r"resume from step 2 \(the finalized earlier steps: "
                                         r"\[1, 2\]\)\.$"):
    _run(tmp_path, num_steps=5, model_config=CONFIG.replace(dropout_rate=0.1))
  os.rename(tmp_path / "3", tmp_path / "3.bad")
  truncate_arrays(tmp_path / "2")
  with pytest.raises(FlanjaxError, match=r"checkpoint step 2 in .* is unreadable \(ValueError: "
                                         r"OUT_OF_RANGE.*\); move it aside .* to resume from "
                                         r"step 1\.$"):
    _run(tmp_path, num_steps=5, model_config=CONFIG.replace(dropout_rate=0.1))
  assert (tmp_path / "flanjax_model.json").read_bytes() == info  # not rewritten (dropout)
  os.rename(tmp_path / "2", tmp_path / "2.bad")
  _run(tmp_path, num_steps=4, checkpoint_period=1)
  assert checkpoints.finalized_steps(tmp_path) == [2, 3, 4]
  assert [json.loads(x)["step"] for x in open(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]


def test_an_incomplete_latest_step_is_reported_set_aside_and_saved_again(tmp_path, capsys):
  import shutil
  _run(tmp_path, num_steps=3, checkpoint_period=1)
  shutil.rmtree(tmp_path / "3" / "params")
  capsys.readouterr()
  assert _run(tmp_path, num_steps=2, checkpoint_period=1) == {}  # nothing to train
  err = capsys.readouterr().err
  assert (f"warning: checkpoint step 3 in {tmp_path} is incomplete (no params/) and is "
          f"skipped: resuming from step 2; the incomplete step was moved to "
          f"{tmp_path}/3.incomplete.") in err
  assert "already at step 2 >= num_steps=2; nothing to do" in err
  # Step 3's row went with its checkpoint.
  assert [json.loads(x)["step"] for x in open(tmp_path / "metrics.jsonl")] == [1, 2]
  _run(tmp_path, num_steps=4, checkpoint_period=1)
  assert sorted(os.listdir(tmp_path / "3.incomplete")) == sorted(
      ["_CHECKPOINT_METADATA", "commit_success.txt", "meta", "opt_state"])
  # Step 3 was trained again and saved this time; its metrics rows are not duplicated.
  assert checkpoints.finalized_steps(tmp_path, checkpoints.TRAIN_ITEMS) == [2, 3, 4]
  rows = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_a_failed_save_stops_training_with_the_step_and_keeps_earlier_checkpoints(
    tmp_path, monkeypatch):
  import orbax.checkpoint as ocp
  real_save = ocp.CheckpointManager.save

  def save(self, step, *args, **kw):
    if step == 4:
      raise ValueError('RESOURCE_EXHAUSTED: Error writing "params/d/1": No space left on device')
    return real_save(self, step, *args, **kw)
  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  with pytest.raises(FlanjaxError, match=r"could not save checkpoint step 4 in .* \(ValueError: "
                                         r"RESOURCE_EXHAUSTED.*\); the earlier checkpoints are "
                                         r"intact \(the latest is step 2\)\. Free disk space"):
    _run(tmp_path, num_steps=6, async_checkpointing=True)
  assert checkpoints.finalized_steps(tmp_path) == [2]


@pytest.mark.parametrize("kw,match", [
    ({"seed": "0"}, r"train: seed='0' must be an integer in \[0, 2\*\*32\) \(gin binding "
                    r"train.seed\); write it without quotes: --gin.train.seed=0\."),
    ({"seed": -1}, r"train: seed=-1 must be an integer in \[0, 2\*\*32\)"),
    ({"seed": 2**32}, r"train: seed=4294967296 must be an integer in \[0, 2\*\*32\)"),
    ({"keep_best": 1, "best_metric": "acc"},
     r"^train: keep_best=1 take effect only with periodic evaluation, which needs both "
     r"train.eval_period \(every N steps\) and train.eval_mixture; set both, or drop them\.$"),
    ({"eval_mixture": "offline_heldout_nli"}, r"^train: eval_mixture='offline_heldout_nli' take "
                                              r"effect only with periodic evaluation"),
    ({"eval_period": 2}, r"^train: eval_period=2 take effect only with periodic evaluation"),
    ({"keep_checkpoints": "3"}, r"train: keep_checkpoints='3' must be an integer >= 1"),
    ({"keep_checkpoints": 0}, r"train: keep_checkpoints=0 must be an integer >= 1"),
    ({"task_feature_lengths": "512"}, r"train: task_feature_lengths='512' must be a dict "
                                      r"\{'inputs': N, 'targets': M\} of integers >= 1 \(gin "
                                      r"binding train.task_feature_lengths\)\.$"),
    ({"task_feature_lengths": {"inputs": 16.5, "targets": 8}}, "task_feature_lengths=.*16.5"),
    ({"mesh_shape": "-1,1"}, r"train: mesh_shape='-1,1' must be a list of integers .*without "
                             r"quotes: --gin.train.mesh_shape=\(-1, 1\)"),
    ({"mesh_shape": (-1, 1.5)}, "mesh_shape=.*must be a list of integers"),
    ({"pack": "False"}, r"train: pack='False' must be True or False"),
    ({"z_loss": "1e-4"}, r"train: z_loss='1e-4' must be a number >= 0"),
    ({"eval_period": -1}, r"train: eval_period=-1 must be an integer >= 0"),
    ({"parameter_partitioning_dims": 1.0}, r"parameter_partitioning_dims=1.0 must be 1 or 2"),
    ({"loss_normalizer": "tokens"}, r"loss_normalizer='tokens' must be one of"),
    ({"optimizer": "adamw"}, r"train: optimizer='adamw' must be an OptimizerConfig"),
    ({"model_overrides": {"dropout_rate": "0.1"}}, r"^train: model_overrides=\{'dropout_rate': "
                                                   r"'0.1'\}: T5Config.dropout_rate='0.1' must "
                                                   r"be a number\.$"),
])
def test_argument_types_are_checked_up_front(tmp_path, kw, match):
  with pytest.raises(FlanjaxError, match=match):
    _run(tmp_path, **kw)
  assert not os.path.exists(tmp_path / "flanjax_model.json")


def test_optimizer_config_field_types_are_checked(tmp_path):
  cfg = OptimizerConfig()
  object.__setattr__(cfg, "b1", "0.9")  # a wrongly typed field set after its own check ran
  with pytest.raises(FlanjaxError, match=r"^OptimizerConfig.b1='0.9' must be a number\.$"):
    _run(tmp_path, optimizer=cfg)
  # The CLI checks the gin bindings of OptimizerConfig: without train.optimizer =
  # @OptimizerConfig() (models/t5_1_1_tiny.gin binds only the model) gin never builds one.
  from flanjax import train as train_module
  from flanjax.gin_config import gin
  gin.clear_config()
  try:
    with pytest.raises(FlanjaxError, match=r"^OptimizerConfig.learning_rate='1e-3' must be a "
                                           r"number \(gin binding "
                                           r"OptimizerConfig.learning_rate\); write it without "
                                           r"quotes: --gin.OptimizerConfig.learning_rate=0.001\.$"):
      train_module.main(["--gin_file=models/t5_1_1_tiny.gin", "--gin.train.synthetic_data=True",
                         "--gin.OptimizerConfig.learning_rate='1e-3'",
                         f"--model_dir={tmp_path / 'cli'}"])
  finally:
    gin.clear_config()
  assert not os.path.exists(tmp_path / "cli")


def test_cli_optimizer_bindings_with_a_model_file_alone_take_effect(tmp_path):
  """models/*.gin bind no train.optimizer; OptimizerConfig bindings given with one alone were
  dropped (train ran at the default 1e-3). They now reach the run: metrics.jsonl logs the bound
  learning rate and the operative config.gin records it."""
  import json

  from flanjax import train as train_module
  from flanjax.gin_config import gin
  gin.clear_config()
  model_dir = tmp_path / "cli"
  try:
    train_module.main(["--gin_file=models/t5_1_1_tiny.gin", "--gin.T5Config.vocab_size=128",
                       "--gin.train.synthetic_data=True",
                       '--gin.train.task_feature_lengths={"inputs": 8, "targets": 4}',
                       "--gin.train.batch_size=2", "--gin.train.num_steps=1",
                       "--gin.train.log_period=1", "--gin.train.progress=False",
                       "--gin.OptimizerConfig.learning_rate=0.01", f"--model_dir={model_dir}"])
  finally:
    gin.clear_config()
  rows = [json.loads(x) for x in open(model_dir / "metrics.jsonl")]
  assert [r["learning_rate"] for r in rows if r["split"] == "train"] == [pytest.approx(0.01)]
  operative = (model_dir / "config.gin").read_text()
  assert "train.optimizer = @OptimizerConfig()" in operative
  assert "OptimizerConfig.learning_rate = 0.01" in operative


def test_tensorboard_drops_the_retrained_steps_of_a_resume(tmp_path):
  """After a resume from step 2 the new event file opens with TensorBoard's purge marker at step
  3 (a SessionLog START: TensorBoard discards the earlier events of steps >= 3), so the retrained
  step 3 shows once, with its new value."""
  import glob
  import time

  import tensorflow as tf

  from flanjax import summaries
  writer = summaries.MetricsWriter(str(tmp_path), total_steps=4, progress=False)
  for s in (1, 2, 3, 4):
    writer.write(s, {"loss": float(s)})
  writer.close()
  first = set(glob.glob(str(tmp_path / "tensorboard" / "train" / "events.*")))
  time.sleep(1.1)  # event files are named by the second they open in
  writer = summaries.MetricsWriter(str(tmp_path), total_steps=4, initial_step=2, progress=False)
  writer.write(3, {"loss": 30.0})
  writer.close()
  (second,) = set(glob.glob(str(tmp_path / "tensorboard" / "train" / "events.*"))) - first
  events = list(tf.compat.v1.train.summary_iterator(second))
  starts = [e.step for e in events if e.HasField("session_log")
            and e.session_log.status == tf.compat.v1.SessionLog.START]
  assert starts == [3]
  assert [(e.step, v.simple_value) for e in events for v in e.summary.value] == [(3, 30.0)]


def test_a_resume_accepts_the_same_vocabulary_at_another_path(tmp_path):
  """The vocabulary recorded with the checkpoints and a resume's are compared by type, extra ids
  and the model file's bytes: a copy (another install, FLANJAX_T5_VOCAB elsewhere) is the same."""
  _same_vocabulary = checkpoints.same_vocabulary
  a, b, c = tmp_path / "a.model", tmp_path / "b.model", tmp_path / "c.model"
  a.write_bytes(b"spm-1")
  b.write_bytes(b"spm-1")
  c.write_bytes(b"spm-2")
  sp = lambda p, **kw: {"type": "sentencepiece", "path": str(p), **kw}  # noqa: E731
  assert _same_vocabulary(sp(a), sp(a)) and _same_vocabulary(sp(a), sp(b))
  assert not _same_vocabulary(sp(a), sp(c))
  assert not _same_vocabulary(sp(a, extra_ids=100), sp(b, extra_ids=0))
  assert not _same_vocabulary(sp(a), {"type": "byte"})
  assert _same_vocabulary(sp(tmp_path / "gone.model"), sp(c))  # recorded file moved away
  assert not _same_vocabulary(sp(a), sp(tmp_path / "missing.model"))


def test_an_init_checkpoint_of_another_vocabulary_is_refused(tmp_path):
  """Fine-tuning a checkpoint on a mixture tokenized with another vocabulary would feed it ids it
  never learned: refused on one line before anything is written. The same SentencePiece model
  elsewhere (another copy, a converted checkpoint's own) is the same vocabulary."""
  from flanjax import vocab
  _same_vocabulary = checkpoints.same_vocabulary
  config = get_config("tiny", vocab_size=1024, dtype="float32")
  init = jax.device_get(model_lib.init_params(config, jax.random.PRNGKey(0)))
  checkpoints.save_pretrained(tmp_path / "init", init, config, {"type": "byte"})
  with pytest.raises(FlanjaxError, match=(
      r"init_checkpoint .*init was trained with the vocabulary \{'type': 'byte'\} .* but "
      r"mixture 'offline_without_nli' is tokenized with \{'type': 'sentencepiece'")):
    _run(tmp_path / "run", model_config=None, init_checkpoint=str(tmp_path / "init"),
         synthetic_data=False, mixture="offline_without_nli")
  assert not os.path.exists(tmp_path / "run" / "flanjax_model.json")
  sp = lambda p, **kw: {"type": "sentencepiece", "path": str(p), **kw}  # noqa: E731
  copy = tmp_path / "copy.model"
  copy.write_bytes(open(vocab.OFFLINE_SPM_PATH, "rb").read())
  assert _same_vocabulary(sp(copy, extra_ids=100), sp(vocab.OFFLINE_SPM_PATH, extra_ids=100),
                          unreadable_ok=True)
  # Converted checkpoints of earlier flanjax record no extra ids: not a difference.
  assert _same_vocabulary(sp(copy), sp(vocab.OFFLINE_SPM_PATH, extra_ids=100))
  # A gs:// model cannot be compared here: accepted for an init checkpoint.
  assert _same_vocabulary(sp(copy), sp("gs://t5-data/spm.model"), unreadable_ok=True)
  assert not _same_vocabulary(sp(copy), sp("gs://t5-data/spm.model"))


def test_loading_past_an_incomplete_step_says_so(tmp_path, caplog):
  """Evaluation / inference / conversion of a model_dir whose latest step lost its params (an
  interrupted save) load the latest complete step with a warning, and asking for that step
  says it is incomplete rather than absent."""
  import logging
  import shutil
  _run(tmp_path, num_steps=4)
  shutil.rmtree(tmp_path / "4" / "params")
  with caplog.at_level(logging.WARNING, logger="flanjax.checkpoints"):
    _, _, _ = checkpoints.load_pretrained(tmp_path)
  assert "step(s) [4] are incomplete (an interrupted save?); loading step 2" in caplog.text
  with pytest.raises(checkpoints.CheckpointError,
                     match=r"step 4 is incomplete \(it has no params: an interrupted save\?\); "
                           r"complete steps: \[2\]"):
    checkpoints.load_pretrained(tmp_path, step=4)
  with pytest.raises(checkpoints.CheckpointError, match=r"has no checkpoint at step 3; available"):
    checkpoints.load_pretrained(tmp_path, step=3)
  # A step with params but no optimizer state (an export) loads: only params are read.
  shutil.rmtree(tmp_path / "2" / "opt_state")
  assert checkpoints.load_pretrained(tmp_path, step=2)[0] == CONFIG


def test_preemption_signals_in_any_order(capsys):
  """Ctrl-C, then SIGTERM: both recorded; a second Ctrl-C stops at once; a second SIGTERM kills
  the process even after a Ctrl-C (in a child process); the handlers are restored after."""
  import signal
  import subprocess
  import sys

  from flanjax.train import _Preemption
  before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
  with _Preemption() as p:
    os.kill(os.getpid(), signal.SIGINT)
    assert p.interrupted and p.requested and not p.terminated
    os.kill(os.getpid(), signal.SIGTERM)
    assert p.terminated
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
  code = ("import os, signal, time\n"
          "from flanjax.train import _Preemption\n"
          "with _Preemption():\n"
          "  for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGTERM):\n"
          "    os.kill(os.getpid(), sig)\n"
          "  time.sleep(30)\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == -signal.SIGTERM, proc.stderr[-2000:]
  assert "Ctrl-C: saving a checkpoint after this step" in proc.stderr


def test_a_resume_with_dropout_reproduces_the_uninterrupted_losses(tmp_path):
  """The resume restores the step's dropout randomness: with dropout on, 2 + 2 steps give the
  losses of 4 straight (every other resume test trains without dropout, where no RNG shows)."""
  cfg = CONFIG.replace(dropout_rate=0.1)
  _run(tmp_path / "straight", num_steps=4, model_config=cfg)
  _run(tmp_path / "resumed", num_steps=2, model_config=cfg)
  _run(tmp_path / "resumed", num_steps=4, model_config=cfg)
  _run(tmp_path / "no_dropout", num_steps=1)
  straight, resumed = _metrics(tmp_path / "straight"), _metrics(tmp_path / "resumed")
  assert straight[1]["loss"] != _metrics(tmp_path / "no_dropout")[1]["loss"]  # dropout is on
  assert [resumed[s]["loss"] for s in (3, 4)] == [straight[s]["loss"] for s in (3, 4)]


def _first_step_sums(params, **kwargs):
  """The loss sums of the synthetic first batch `_run` trains on, computed without the trainer."""
  batch = synthetic.make_batch(CONFIG, 8, LENGTHS["inputs"], LENGTHS["targets"], 0, 0)
  inputs = {k: v for k, v in batch.items()
            if k not in ("decoder_target_tokens", "decoder_loss_weights")}
  logits = model_lib.T5(CONFIG).apply({"params": params}, **inputs)
  return losses.weighted_sums(logits, batch["decoder_target_tokens"],
                              batch["decoder_loss_weights"], z_loss=1e-4, **kwargs)


@pytest.mark.parametrize("setting", [{"label_smoothing": 0.1}, {"loss_normalizer": 1000.0}])
def test_loss_settings_reach_the_training_loss(tmp_path, setting):
  """train's label_smoothing and a number as loss_normalizer change the logged first-step loss
  as the loss functions compute it (other tests run them only at their defaults)."""
  init = jax.device_get(model_lib.init_params(CONFIG, jax.random.PRNGKey(7)))
  checkpoints.save_pretrained(tmp_path / "init", init, CONFIG, {"type": "byte"})
  sums = _first_step_sums(init, label_smoothing=setting.get("label_smoothing", 0.0))
  want = float(sums["loss"]) / setting.get("loss_normalizer", float(sums["weight"]))
  _run(tmp_path / "run", model_config=None, init_checkpoint=str(tmp_path / "init"), num_steps=1,
       **setting)
  assert _metrics(tmp_path / "run")[1]["loss"] == pytest.approx(want, rel=1e-5)


def test_the_finetune_recipe_trains(tmp_path):
  """runs/finetune.gin, README's recipe, through `flanjax train`'s entry point: from a converted
  tiny checkpoint on the offline collection, at small lengths for one step; its model
  override (dropout 0.05) reaches the model the run records."""
  from flanjax import train as train_module
  from flanjax import vocab
  from flanjax.gin_config import gin
  config = get_config("tiny", vocab_size=1024, dtype="float32")
  init = jax.device_get(model_lib.init_params(config, jax.random.PRNGKey(0)))
  checkpoints.save_pretrained(tmp_path / "init", init, config, vocab.offline_vocabulary())
  run = tmp_path / "run"
  try:
    assert train_module.main([
        "--gin_file=runs/finetune.gin", f"--gin.train.init_checkpoint='{tmp_path / 'init'}'",
        "--gin.train.mixture='offline_without_nli'", "--gin.train.batch_size=2",
        '--gin.train.task_feature_lengths={"inputs": 32, "targets": 8}',
        "--gin.train.num_steps=1", "--gin.train.progress=False", f"--model_dir={run}"]) == 0
  finally:
    gin.clear_config()
  assert checkpoints.finalized_steps(run, ("params", "opt_state", "meta")) == [1]
  assert checkpoints.read_model_info(run)["model_config"]["dropout_rate"] == 0.05
  assert np.isfinite(_metrics(run)[1]["loss"])
  assert "train.mixture = 'offline_without_nli'" in (run / "config.gin").read_text()


def test_a_pipeline_tf_data_cannot_save_is_checkpointed_without_its_state(tmp_path, capsys):
  """A Python function in the pipeline (tf.py_function, a generator source such as TFDS's
  mock_data) makes tf.data refuse to serialise the iterator: the checkpoints go on without the
  data state (a resume skips batches instead), with one warning, and leave no partial state."""
  from flanjax import train as train_module

  class Unsaveable:
    def save(self, prefix):
      raise RuntimeError("{{function_node SerializeIterator}} PyFunc is stateful. [Op:Serialize]")

  manager = checkpoints.TrainCheckpointManager(str(tmp_path), async_save=False)
  stream = object.__new__(train_module._DataStream)  # the saving part alone, on a fake iterator
  stream._it, stream._manager, stream._saveable, stream._built_with = Unsaveable(), manager, True, 0
  stream.save(2, batches_consumed=2)
  stream.save(4, batches_consumed=4)  # once unsaveable, not tried again
  err = capsys.readouterr().err
  assert err.count("warning: the data stream cannot be saved (RuntimeError: ") == 1
  assert "a resume re-reads and skips the batches already trained on" in err
  assert not os.path.exists(tmp_path / "data_state" / "2")
  manager.close()
