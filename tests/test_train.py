"""The trainer in one process: gradient accumulation, init from a checkpoint, frozen params,
NaN stop, periodic evaluation with keep-best, metrics files."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
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
  # Same gradient up to fp32 summation order (relative to each tensor's largest entry).
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g4)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(np.abs(a).max()))
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
  config = get_config("tiny", vocab_size=128, dtype="float32", num_decoder_layers=3,
                      feed_forward_proj=ff, tie_word_embeddings=tied)
  want = _hlo_matmul_flops(config, 24, 12)
  assert flops.t5_forward_flops_per_sequence(config, 24, 12) == want
  assert flops.t5_train_flops_per_sequence(config, 24, 12) == 3 * want


def test_peak_flops_and_mfu():
  from flanjax import flops
  assert flops.peak_flops_per_device("NVIDIA H100 80GB HBM3") == 989e12
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
])
def test_resume_with_other_data_settings_is_an_error(tmp_path, change, match):
  _run(tmp_path, num_steps=2)
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


def test_changing_scan_layers_on_resume_is_a_clear_error(tmp_path):
  _run(tmp_path, num_steps=2)
  with pytest.raises(FlanjaxError, match=r"different model \(fields \['scan_layers'\]"):
    _run(tmp_path, num_steps=4, model_overrides={"scan_layers": True})


def test_resume_with_another_optimizer_state_layout_is_a_clear_error(tmp_path):
  _run(tmp_path, num_steps=2, optimizer=OptimizerConfig(learning_rate=1e-2, stacked_layers=False))
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
  capsys.readouterr()
  _run(tmp_path / "saved", num_steps=6, **kw)
  assert "skipping" not in capsys.readouterr().err
  _run(tmp_path / "skipped", num_steps=6, **kw)
  assert "skipping the first 4 batches" in capsys.readouterr().err
  want = _metrics(tmp_path / "straight")
  for name in ("saved", "skipped"):
    got = _metrics(tmp_path / name)
    assert [got[s]["loss"] for s in (5, 6)] == [want[s]["loss"] for s in (5, 6)], name
  assert sorted(os.listdir(tmp_path / "saved" / "data_state")) == ["6"]
