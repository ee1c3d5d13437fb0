"""Meshes, logical axis rules, batch sharding; loss equality across meshes on 8 CPU devices."""
import json

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from flanjax import partitioning
from flanjax.config import get_config
from flanjax.errors import FlanjaxError
from flanjax.partitioning import fit_spec
from flanjax.train import param_shardings


def test_make_mesh_checks_device_count():
  n = jax.device_count()
  mesh = partitioning.make_mesh((-1, 1))
  assert dict(mesh.shape) == {"data": n, "model": 1}
  assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)
  with pytest.raises(FlanjaxError, match=r"mesh_shape \(2, 4\).*8 devices.*does not match the "
                                         rf"{n} available devices"):
    partitioning.make_mesh((2, 4))
  with pytest.raises(FlanjaxError, match="at most one entry may be -1"):
    partitioning.make_mesh((-1, -1))


def test_batch_size_must_divide_data_axis():
  mesh = partitioning.make_mesh((1, 1))
  partitioning.check_batch_size(6, mesh)
  with pytest.raises(FlanjaxError, match="num_microbatches=4"):
    partitioning.check_batch_size(6, mesh, num_microbatches=4)


def test_rules_map_logical_axes():
  rules1 = partitioning.standard_logical_axis_rules(1)
  rules2 = partitioning.standard_logical_axis_rules(2)
  import flax.linen as nn
  assert nn.logical_to_mesh_axes(("embed", "mlp"), rules1) == P(None, "model")
  assert nn.logical_to_mesh_axes(("embed", "mlp"), rules2) == P("data", "model")
  assert nn.logical_to_mesh_axes(("vocab", "embed"), rules2) == P("model", "data")
  # Activations keep batch on data: embed does not take `data` a second time.
  assert nn.logical_to_mesh_axes(("batch", "length", "embed"), rules2) == P("data", None, None)
  with pytest.raises(FlanjaxError, match="parameter_partitioning_dims=3"):
    partitioning.standard_logical_axis_rules(3)


def test_param_shardings_cover_every_param():
  config = get_config("tiny", vocab_size=128)
  mesh = partitioning.make_mesh((1, 1))
  from flanjax import model
  shapes = model.param_shapes(config)
  sh = param_shardings(config, mesh, partitioning.STANDARD_LOGICAL_AXIS_RULES, shapes)
  assert jax.tree.structure(sh) == jax.tree.structure(shapes)
  spec = sh["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"].spec
  assert spec == P(None, "model")


def test_fit_spec_drops_axes_that_do_not_divide():
  mesh = np.empty((2, 4))
  fake = type("M", (), {"shape": {"data": 2, "model": 4}})()
  del mesh
  assert fit_spec(P("model", None), (4, 32), fake) == P("model", None)
  assert fit_spec(P("model", None), (6, 32), fake) == P(None, None)
  assert fit_spec(P(("data", "model")), (16,), fake) == P(("data", "model"))


def test_process_batch_slice_single_process():
  mesh = partitioning.make_mesh((-1, 1))
  assert partitioning.process_batch_slice(mesh, 8) == (0, 1, slice(0, 8))


MESH_SCRIPT = r"""
import json, shutil, sys, tempfile
import jax
assert jax.device_count() == 8, jax.devices()
from flanjax.train import train
from flanjax.config import get_config
from flanjax.optimizers import OptimizerConfig
config = get_config("tiny", vocab_size=128, dtype="float32")
base = tempfile.mkdtemp()
import flanjax.train as train_module
specs, make_step = {}, train_module.make_train_step
def spy(*args, **kw):  # the sharding train gives one MLP kernel in its step
  kernel = kw["state_shardings"].params["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
  specs[current] = list(kernel.spec)
  return make_step(*args, **kw)
train_module.make_train_step = spy
def run(name, steps, **kw):
  global current
  current = name
  args = dict(model_dir=f"{base}/{name}", model_config=config, synthetic_data=True,
              task_feature_lengths={"inputs": 24, "targets": 12}, batch_size=16, num_steps=steps,
              checkpoint_period=2, log_period=1, progress=False, async_checkpointing=False,
              optimizer=OptimizerConfig(learning_rate=1e-2))
  args.update(kw)
  train(**args)
  rows = [json.loads(l) for l in open(f"{base}/{name}/metrics.jsonl")]
  return {r["step"]: r["loss"] for r in rows if r["split"] == "train"}
out = {}
out["8x1"] = run("a", 3, mesh_shape=(8, 1))
out["2x4"] = run("b", 3, mesh_shape=(2, 4))
out["1x8"] = run("c", 3, mesh_shape=(1, 8))
out["2x4_fsdp"] = run("d", 3, mesh_shape=(2, 4), parameter_partitioning_dims=2)
out["4x2_micro2"] = run("e", 3, mesh_shape=(4, 2), num_microbatches=2)
# Restore onto a different mesh: 2 steps on 8x1, then resume on 2x4 up to step 3.
run("f", 2, mesh_shape=(8, 1))
out["8x1_then_2x4"] = run("f", 3, mesh_shape=(2, 4))
shutil.rmtree(base)
out["specs"] = specs
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_loss_is_the_same_on_every_mesh(python_runner):
  proc = python_runner(MESH_SCRIPT, devices=8, timeout=600)
  out = json.loads(proc.stdout.split("RESULT")[-1])
  # parameter_partitioning_dims=2 shards the kernels' embed axis over "data" too (FSDP, as
  # T5X's rules); 1 only over "model".
  specs = out.pop("specs")
  assert specs["b"] == [None, "model"] and specs["d"] == ["data", "model"], specs
  ref = out["8x1"]
  assert sorted(ref) == ["1", "2", "3"]
  assert ref["3"] < ref["1"]  # it trains
  for name, losses in out.items():
    for step in ref:
      assert abs(losses[step] - ref[step]) <= 1e-5, (name, step, losses[step], ref[step])


# A 6-head model with a 259-id vocabulary on a (1, 4) mesh: neither divides the model axis.
EVAL_MESH_SCRIPT = r"""
import json, sys, tempfile
import jax, numpy as np
assert jax.device_count() == 4, jax.devices()
from flanjax import checkpoints, convert, evaluation, infer, model
from flanjax.config import get_config
config = get_config("tiny", vocab_size=259, d_model=48, num_heads=6, head_dim=8, d_ff=64,
                    dtype="float32")
params = jax.device_get(model.init_params(config, jax.random.PRNGKey(0)))
base = tempfile.mkdtemp()
checkpoints.save_pretrained(f"{base}/ck", params, config, {"type": "byte"})
convert.save_hf(f"{base}/hf", config, params)
rows = [{"inputs": "hello world", "targets": "yes"}, {"inputs": "x", "targets": "no way"}]
out = {}
for mesh in ((4, 1), (1, 4), (2, 2)):
  cfg, p, vocab, m, _ = evaluation.load_checkpoint(f"{base}/ck", None, mesh)
  key = "x".join(map(str, mesh))
  out[key] = [r["prediction"] for r in infer.run(cfg, p, vocab, rows, "predict", batch_size=4,
                                                 max_decode_length=4, mesh=m)]
  out[key] += [r["score"] for r in infer.run(cfg, p, vocab, rows, "score", batch_size=4,
                                             mesh=m)]
# A Hugging Face directory goes through the same placement.
# (its config.json records no compute dtype)
cfg, p, _, m, _ = evaluation.load_checkpoint(f"{base}/hf", None, (1, 4), dtype="float32")
rel = p["encoder"]["relpos_bias"]["rel_embedding"]
assert rel.sharding.spec == jax.sharding.PartitionSpec(None, None), rel.sharding
out["hf"] = [r["score"] for r in infer.run(cfg, p, vocab, rows, "score", batch_size=4, mesh=m)]
# `flanjax infer` itself, on the (1, 4) mesh.
with open(f"{base}/in.jsonl", "w") as f:
  f.write("".join(json.dumps(r) + "\n" for r in rows))
infer.main(["--checkpoint", f"{base}/ck", "--mode", "predict", "--input", f"{base}/in.jsonl",
            "--output", f"{base}/out.jsonl", "--mesh_shape", "1,4", "--max_decode_length", "4",
            "--batch_size", "4"])
out["cli"] = [json.loads(l)["prediction"] for l in open(f"{base}/out.jsonl")]
print("RESULT" + json.dumps(out))
"""


def test_eval_and_infer_load_a_model_the_model_axis_does_not_divide(python_runner):
  """Loading for eval / infer / heldout shards params like training (`fit_spec`): a head or
  vocab count the model axis does not divide is replicated on that axis, not an error (which
  used to call the checkpoint unreadable)."""
  proc = python_runner(EVAL_MESH_SCRIPT, devices=4)
  out = json.loads(proc.stdout.split("RESULT")[-1])
  ref = out["4x1"]
  for key in ("1x4", "2x2"):
    assert out[key][:2] == ref[:2], key
    np.testing.assert_allclose(out[key][2:], ref[2:], rtol=1e-5, err_msg=key)
  np.testing.assert_allclose(out["hf"], ref[2:], rtol=1e-5)
  assert out["cli"] == ref[:2]
