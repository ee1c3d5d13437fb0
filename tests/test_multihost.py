"""Multi-host: 2 processes x 4 CPU devices on localhost train to the same losses as
1 process x 8 devices (jax.distributed over gloo; each process feeds only its own rows)."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import CACHE_ENV, NEUTRAL_CWD

from flanjax import checkpoints


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _flags(model_dir, mesh):
  return [
      "--gin_file=models/t5_1_1_tiny.gin", "--gin.T5Config.vocab_size=128",
      '--gin.T5Config.dtype="float32"', "--gin.train.synthetic_data=True",
      '--gin.train.task_feature_lengths={"inputs": 24, "targets": 12}',
      "--gin.train.batch_size=16", "--gin.train.num_steps=3", f"--gin.train.mesh_shape={mesh}",
      "--gin.train.checkpoint_period=2", "--gin.train.log_period=1",
      "--gin.train.progress=False", "--gin.OptimizerConfig.learning_rate=0.01",
      f"--model_dir={model_dir}",
  ]


def _start(flags, devices, extra=()):
  env = dict(os.environ)
  env.update(CACHE_ENV)
  env.update({"JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
              "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"})
  return subprocess.Popen([sys.executable, "-m", "flanjax.train", *flags, *extra], cwd=NEUTRAL_CWD,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _losses(model_dir):
  rows = [json.loads(x) for x in open(os.path.join(model_dir, "metrics.jsonl"))]
  return {r["step"]: r["loss"] for r in rows if r["split"] == "train"}


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
  single = _start(_flags(tmp_path / "single", "(8, 1)"), devices=8)
  out, err = single.communicate(timeout=400)
  assert single.returncode == 0, err[-3000:]

  addr = f"127.0.0.1:{_free_port()}"
  procs = [_start(_flags(tmp_path / "multi", "(4, 2)"), devices=4,
                  extra=[f"--coordinator_address={addr}", "--num_processes=2",
                         f"--process_id={i}"]) for i in range(2)]
  errs = []
  for p in procs:
    try:
      _, err = p.communicate(timeout=400)
    finally:
      if p.poll() is None:
        p.kill()
    errs.append(err)
  assert all(p.returncode == 0 for p in procs), "\n----\n".join(e[-3000:] for e in errs)

  want, got = _losses(tmp_path / "single"), _losses(tmp_path / "multi")
  assert sorted(got) == [1, 2, 3]
  for step in want:
    assert abs(got[step] - want[step]) <= 1e-5, (step, got[step], want[step])
  # Both processes wrote their shards of one checkpoint; it restores in this process.
  assert checkpoints.finalized_steps(tmp_path / "multi", ("params", "opt_state", "meta")) == [2, 3]
  _, params, _ = checkpoints.load_pretrained(tmp_path / "multi")
  _, params1, _ = checkpoints.load_pretrained(tmp_path / "single")
  # Elementwise equality is not expected: Adafactor turns fp32 reduction-order noise on
  # near-zero gradients into O(lr) updates of single entries. The whole tree agrees closely.
  diff = sum(float(np.sum((np.asarray(a) - np.asarray(b)) ** 2))
             for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params1)))
  norm = sum(float(np.sum(np.asarray(b) ** 2)) for b in jax.tree.leaves(params1))
  assert (diff / norm) ** 0.5 < 1e-5


# What `srun -n 2` sets for task 1 of a job step (the variables jax's SLURM detection reads).
SRUN_ENV = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "2", "SLURM_STEP_NODELIST": "node[01-02]",
            "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}


def test_slurm_is_auto_detected_only_inside_an_srun_step(monkeypatch):
  """In `salloc -n 2` (or an sbatch script without srun) jax finds no coordinator: a one-line
  error saying how to launch, not jax's ValueError."""
  from jax._src.clusters.slurm_cluster import SlurmCluster

  from flanjax import distributed
  from flanjax.errors import FlanjaxError
  for name in list(os.environ):
    if name.startswith(("SLURM_", "TPU_", "MEGASCALE_", "FLANJAX_")):
      monkeypatch.delenv(name)
  for name, value in SRUN_ENV.items():
    monkeypatch.setenv(name, value)
  assert distributed.detect_cluster() == "slurm" and SlurmCluster.is_env_present()
  for name in ("SLURM_STEP_NODELIST", "SLURM_PROCID", "SLURM_LOCALID"):
    monkeypatch.delenv(name)
  assert not SlurmCluster.is_env_present()
  message = (r"^SLURM job 4242 has 2 tasks but this process is not in an srun step \(no "
             r"SLURM_STEP_NODELIST, SLURM_PROCID, SLURM_LOCALID\): launch with `srun flanjax "
             r"\.\.\.`, or pass --coordinator_address, --num_processes and --process_id\.$")
  with pytest.raises(FlanjaxError, match=message):
    distributed.initialize()
  assert not jax.distributed.is_initialized()
  monkeypatch.setenv("SLURM_NTASKS", "1")  # a one-task job: a single process
  assert distributed.detect_cluster() is None and distributed.initialize() is False


def _clean_cluster_env(monkeypatch):
  for name in list(os.environ):
    if name.startswith(("SLURM_", "TPU_", "MEGASCALE_", "FLANJAX_")) or name in (
        "CUDA_VISIBLE_DEVICES",):
      monkeypatch.delenv(name)


def test_one_slurm_task_per_node_gets_all_the_nodes_gpus(monkeypatch):
  """jax's SLURM detection gives a task only the GPU of its SLURM_LOCALID: right for one task
  per GPU, but launch/gpu_slurm.sbatch runs one task per node, which then used 1 GPU of 8."""
  from flanjax import distributed
  _clean_cluster_env(monkeypatch)
  calls = []
  monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
  monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
  for name, value in SRUN_ENV.items():
    monkeypatch.setenv(name, value)
  monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", "1(x2)")
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7")
  assert distributed.initialize() is True
  assert calls[-1] == {"local_device_ids": [0, 1, 2, 3, 4, 5, 6, 7]}
  monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
  monkeypatch.setenv("SLURM_GPUS_ON_NODE", "4")
  distributed.initialize()
  assert calls[-1] == {"local_device_ids": [0, 1, 2, 3]}
  monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", "8(x2)")  # one task per GPU: jax's default
  distributed.initialize()
  assert calls[-1] == {"local_device_ids": None}


def test_a_cloud_tpu_vm_pod_is_detected_from_the_metadata_server(monkeypatch):
  """`gcloud compute tpus tpu-vm create` pods name their workers only in the GCE metadata
  (jax's GceTpuCluster); no environment variable does."""
  from jax._src.clusters.cloud_tpu_cluster import GceTpuCluster

  from flanjax import distributed
  _clean_cluster_env(monkeypatch)
  assert distributed.tpu_vm_workers() == 0 and distributed.detect_cluster() is None
  monkeypatch.setattr(GceTpuCluster, "is_env_present", classmethod(lambda cls: True))
  workers = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
  monkeypatch.setattr(GceTpuCluster, "_get_worker_list_in_slice", staticmethod(lambda: workers))
  assert distributed.tpu_vm_workers() == 4 and distributed.detect_cluster() == "tpu"
  workers[1:] = []  # a single-host TPU VM: one process, nothing to initialise
  assert distributed.detect_cluster() is None


def _start_cli(command, args, devices, env=None, log=None):
  """`python -m flanjax COMMAND ARGS` on `devices` CPU devices (from a folder outside the repo);
  its output to the file `log` where given (a process of a job that fills its pipe while the
  test waits on another would block it, and the job with it)."""
  full = dict(os.environ)
  full.update(CACHE_ENV)
  full.update({"JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
               "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", **(env or {})})
  out = open(log, "w") if log else subprocess.PIPE
  return subprocess.Popen([sys.executable, "-m", "flanjax", command, *args], cwd=NEUTRAL_CWD,
                          env=full, stdout=out, stderr=subprocess.STDOUT if log else out,
                          text=True)


def _start_infer(args, devices):
  return _start_cli("infer", args, devices)


@pytest.mark.slow
def test_infer_under_two_processes_matches_one_process(tmp_path):
  """`flanjax infer` in a 2-process job (2 CPU devices each) joins it: the batches are split
  over the 4 devices, and process 0 alone writes the rows one process writes."""
  from test_evaluation import save_tiny_checkpoint

  from flanjax import infer
  ckpt = str(tmp_path / "ckpt")
  save_tiny_checkpoint(ckpt, seed=2)
  src = tmp_path / "in.jsonl"
  src.write_text("".join(json.dumps({"inputs": f"row {i} says {'x' * i}"}) + "\n"
                         for i in range(5)))
  flags = ["--checkpoint", ckpt, "--mode", "predict", "--input", str(src), "--batch_size", "4",
           "--max_decode_length", "6", "--decode_method", "beam", "--num_beams", "2"]
  assert infer.main(flags + ["--output", str(tmp_path / "one.jsonl")]) == 0
  addr = f"127.0.0.1:{_free_port()}"
  procs = [_start_infer(flags + ["--output", str(tmp_path / "two.jsonl"),
                                 f"--coordinator_address={addr}", "--num_processes=2",
                                 f"--process_id={i}"], devices=2) for i in range(2)]
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=300))
    finally:
      if p.poll() is None:
        p.kill()
  assert all(p.returncode == 0 for p in procs), "\n----\n".join(e[-3000:] for _, e in outs)
  wrote = [[line for line in o.splitlines() if line.startswith("Wrote")] for o, _ in outs]
  assert wrote == [[f"Wrote 5 rows to {tmp_path / 'two.jsonl'}"], []]  # gloo prints too
  assert (tmp_path / "two.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()


DATA_STATE_SCRIPT = """
import sys
import jax
jax.distributed.initialize(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
from flanjax import checkpoints
manager = checkpoints.TrainCheckpointManager(sys.argv[3], async_save=False)
def save_fn(prefix):
  if jax.process_index() == 1:
    raise OSError(28, "No space left on device")
  open(prefix + ".index", "w").close()
try:
  manager.write_data_state(2, save_fn, {"batches_consumed": 2})
except checkpoints.CheckpointError as e:
  print("CheckpointError:", e)
"""


def test_a_data_state_one_process_cannot_write_stops_every_process(tmp_path):
  """Process 1's disk is full: both processes raise (process 0 would otherwise wait for it in
  the Orbax save that follows until the distributed timeout), and nothing is left behind."""
  addr = f"127.0.0.1:{_free_port()}"
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
  procs = [subprocess.Popen([sys.executable, "-c", DATA_STATE_SCRIPT, addr, str(i),
                             str(tmp_path / "run")], cwd=NEUTRAL_CWD, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=120)[0])
    finally:
      if p.poll() is None:
        p.kill()
  assert "(OSError: process 1 could not write its data state; its log says why)" in outs[0]
  assert "(OSError: [Errno 28] No space left on device); the earlier checkpoints are intact" in (
      outs[1])
  assert os.listdir(tmp_path / "run" / "data_state") == []


TOY_MODULE = """
import seqio
from flanjax import registration, templates
registration.register_file_task(
    "mh_toy", {"validation": %r}, metric="accuracy", vocabulary=seqio.ByteVocabulary(),
    templates=[templates.Template("Is {n} even?", "{answer}")], options=["yes", "no"])
"""


@pytest.mark.slow
def test_eval_under_two_processes_matches_one_process(tmp_path):
  """`flanjax eval` in a 2-process job (2 CPU devices each) scores the examples sharded over the
  4 devices, and process 0 alone writes the same metrics and predictions as one process."""
  from test_evaluation import save_tiny_checkpoint
  ckpt = str(tmp_path / "ckpt")
  save_tiny_checkpoint(ckpt, seed=3)
  rows = tmp_path / "rows.jsonl"
  rows.write_text("".join(json.dumps({"n": str(i), "answer": ["yes", "no"][i % 2]}) + "\n"
                          for i in range(7)))
  (tmp_path / "mh_toy_tasks.py").write_text(TOY_MODULE % str(rows))
  env = {"PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}"}
  flags = ["--checkpoint", ckpt, "--module", "mh_toy_tasks", "--task", "mh_toy", "--batch_size",
           "4", "--max_decode_length", "4"]
  for name, processes in (("one", 1), ("two", 2)):
    addr = f"127.0.0.1:{_free_port()}"  # taken now: the port is free when the job starts
    extras = [[f"--coordinator_address={addr}", f"--num_processes={processes}",
               f"--process_id={i}"] for i in range(processes)]
    logs = [tmp_path / f"{name}_{i}.log" for i in range(len(extras))]
    procs = [_start_cli("eval", flags + ["--output_dir", str(tmp_path / name)] + extra,
                        devices=2, env=env, log=log) for extra, log in zip(extras, logs)]
    for p in procs:
      try:
        p.wait(timeout=300)
      finally:
        if p.poll() is None:
          p.kill()
    assert all(p.returncode == 0 for p in procs), "\n----\n".join(
        log.read_text()[-3000:] for log in logs)
  assert "Wrote metrics.json" in (tmp_path / "two_0.log").read_text()
  assert "Wrote metrics.json" not in (tmp_path / "two_1.log").read_text()  # process 0 writes
  one, two = (json.load(open(tmp_path / n / "metrics.json")) for n in ("one", "two"))
  assert one["tasks"] == two["tasks"] and one["tasks"]["mh_toy"]["num_examples"] == 7
  rows = [[json.loads(line) for line in open(tmp_path / n / "predictions.jsonl")]
          for n in ("one", "two")]
  assert len(rows[0]) == len(rows[1]) == 7
  for a, b in zip(*rows):  # the scores up to summation order over the devices
    assert {k: v for k, v in a.items() if "score" not in k} == {
        k: v for k, v in b.items() if "score" not in k}
    np.testing.assert_allclose(a["option_scores"], b["option_scores"], rtol=1e-5)
    assert a["score"] == pytest.approx(b["score"], rel=1e-5)
