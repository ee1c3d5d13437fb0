"""Exact resume after the process is killed (SIGKILL), preempted (SIGTERM) or interrupted
(Ctrl-C), through the CLI.

A run interrupted at step k and restarted with the same command must reproduce the
uninterrupted run's per-step losses exactly (CPU), which needs the params, optimizer state,
step, RNG and data position all restored.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import CACHE_ENV, NEUTRAL_CWD

from flanjax import checkpoints

ITEMS = ("params", "opt_state", "meta")


def _flags(model_dir, *, mixture, num_steps):
  data = ('--gin.train.mixture="offline"' if mixture else "--gin.train.synthetic_data=True")
  return [
      "--gin_file=models/t5_1_1_tiny.gin", "--gin.T5Config.vocab_size=2048",
      '--gin.T5Config.dtype="float32"', data,
      '--gin.train.task_feature_lengths={"inputs": 64, "targets": 16}',
      "--gin.train.batch_size=8", f"--gin.train.num_steps={num_steps}",
      "--gin.train.checkpoint_period=3", "--gin.train.log_period=1",
      "--gin.train.progress=False", "--gin.OptimizerConfig.learning_rate=0.01",
      f"--model_dir={model_dir}",
  ]


def _env(delay=0.0):
  env = dict(os.environ)
  env.update(CACHE_ENV)
  env.update({"JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
              "FLANJAX_TEST_STEP_DELAY_S": str(delay)})
  env.pop("XLA_FLAGS", None)
  return env


def _train(model_dir, delay=0.0, **kw):
  return subprocess.Popen([sys.executable, "-m", "flanjax.train", *_flags(model_dir, **kw)],
                          cwd=NEUTRAL_CWD, env=_env(delay), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=400):
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, out, err


def _losses(model_dir):
  """Per-step train loss; a step logged twice (before a kill and after resuming) keeps the
  later value."""
  out = {}
  for line in open(os.path.join(model_dir, "metrics.jsonl")):
    r = json.loads(line)
    if r["split"] == "train":
      out[r["step"]] = r["loss"]
  return out


def _wait_for_step(model_dir, step, proc, timeout=300):
  t0 = time.time()
  while time.time() - t0 < timeout:
    if step in checkpoints.finalized_steps(model_dir, ITEMS):
      return
    if proc.poll() is not None:
      raise AssertionError(f"training exited early:\n{proc.stderr.read()[-3000:]}")
    time.sleep(0.05)
  raise AssertionError(f"no checkpoint at step {step} after {timeout}s")


def _check_resume(tmp_path, mixture, sig, num_steps):
  ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
  ref = _train(ref_dir, mixture=mixture, num_steps=num_steps)
  rc, _, err = _finish(ref)
  assert rc == 0, err[-3000:]
  proc = _train(run_dir, delay=0.7, mixture=mixture, num_steps=num_steps)
  _wait_for_step(run_dir, 3, proc)
  proc.send_signal(sig)
  rc, _, err = _finish(proc)
  done = checkpoints.finalized_steps(run_dir, ITEMS)
  stopped_at = max(_losses(run_dir))
  assert stopped_at < num_steps, "the run finished before it was interrupted"
  if sig == signal.SIGTERM:
    assert rc == 0, err[-3000:]
    assert f"SIGTERM received: saved checkpoint at step {stopped_at}" in err
    assert done[-1] == stopped_at  # it finished the step and saved it
  elif sig == signal.SIGINT:  # Ctrl-C: the same, then the CLI's interrupted status and line
    assert rc == 130, err[-3000:]
    assert f"Ctrl-C: saved checkpoint at step {stopped_at}" in err
    assert f"flanjax train: interrupted. The last saved checkpoint is step {stopped_at}" in err
    assert done[-1] == stopped_at
  else:
    assert rc == -signal.SIGKILL
  rc, _, err = _finish(_train(run_dir, mixture=mixture, num_steps=num_steps))
  assert rc == 0, err[-3000:]
  want, got = _losses(ref_dir), _losses(run_dir)
  assert sorted(got) == list(range(1, num_steps + 1))
  assert got == want  # bit-exact, every step
  # Steps logged after the resumed checkpoint and before the kill were dropped, not duplicated.
  steps = [json.loads(x)["step"] for x in open(os.path.join(run_dir, "metrics.jsonl"))]
  assert steps == list(range(1, num_steps + 1))
  return stopped_at


@pytest.mark.slow
def test_kill_9_and_resume_on_the_offline_mixture_is_exact(tmp_path):
  _check_resume(tmp_path, mixture=True, sig=signal.SIGKILL, num_steps=10)


@pytest.mark.slow
def test_sigterm_saves_exits_zero_and_resumes_exactly(tmp_path):
  _check_resume(tmp_path, mixture=False, sig=signal.SIGTERM, num_steps=9)


@pytest.mark.slow
def test_ctrl_c_saves_then_stops_and_resumes_exactly(tmp_path):
  _check_resume(tmp_path, mixture=False, sig=signal.SIGINT, num_steps=9)
