"""launch/: the TPU-VM and GPU scripts, run against stand-ins for gcloud and the tools a TPU VM
host has (python3.11, pip, sudo, mountpoint, gcsfuse, flanjax), which record what they get."""
import os
import subprocess

from conftest import REPO

STUB = """#!/usr/bin/env bash
printf '%s\\n' "$0 $*" >> "$LAUNCH_LOG"
"""
GCLOUD = """#!/usr/bin/env bash
printf 'gcloud %s\\n' "$*" >> "$LAUNCH_LOG"
# scp ARCHIVE HOST:/tmp/flanjax.tar.gz: to $FAKE_HOME/../flanjax.tar.gz instead
[ "$4" = scp ] && cp "$5" "$FAKE_HOME/../flanjax.tar.gz"
# ssh --command CMD: the host runs CMD (here, locally with the host's stand-ins)
while [ $# -gt 0 ]; do [ "$1" = --command ] && cmd=$2; shift; done
if [ -n "${cmd:-}" ]; then
  cmd=${cmd//\\/tmp\\/flanjax.tar.gz/$FAKE_HOME/../flanjax.tar.gz}
  HOME=$FAKE_HOME PATH=$HOST_BIN:/usr/bin:/bin bash -c "$cmd"
fi
"""
PYTHON = """#!/usr/bin/env bash
# python3.11 -m venv DIR: a venv whose pip and flanjax are the stand-ins
mkdir -p "$3/bin" && printf 'export PATH=%s:$PATH\\n' "$HOST_BIN" > "$3/bin/activate"
"""
FLANJAX = """#!/usr/bin/env bash
for a in "$@"; do printf 'flanjax arg [%s]\\n' "$a" >> "$LAUNCH_LOG"; done
"""


def _stubs(tmp_path):
  local, host, home = tmp_path / "bin", tmp_path / "host_bin", tmp_path / "home"
  for d in (local, host, home):
    d.mkdir()
  scripts = {local / "gcloud": GCLOUD, host / "python3.11": PYTHON, host / "flanjax": FLANJAX,
             **{host / name: STUB for name in ("pip", "sudo", "gcsfuse")},
             host / "mountpoint": "#!/usr/bin/env bash\nexit 1\n"}  # not mounted yet
  for path, text in scripts.items():
    path.write_text(text)
    path.chmod(0o755)
  log = tmp_path / "launch.log"
  env = {**os.environ, "PATH": f"{local}:{os.environ['PATH']}", "LAUNCH_LOG": str(log),
         "HOST_BIN": str(host), "FAKE_HOME": str(home)}
  return env, log, home


def test_tpu_vm_starts_the_same_train_command_detached_on_every_host(tmp_path):
  env, log, home = _stubs(tmp_path)
  flags = ["--gin_file=runs/finetune.gin", "--gin.train.init_checkpoint=\"'/gcs/b/flan t5'\""]
  out = subprocess.run(["bash", f"{REPO}/launch/tpu_vm.sh", "my-tpu", "zone-a", "/gcs/b/run 1",
                        *flags], env={**env, "GCS_BUCKET": "b"}, capture_output=True, text=True,
                       timeout=60)
  assert out.returncode == 0, out.stderr
  for _ in range(50):  # the detached run
    if "flanjax arg" in log.read_text():
      break
    subprocess.run(["sleep", "0.1"])
  text = log.read_text()
  # Every argument arrives whole, spaces and quotes included.
  assert [line[len("flanjax arg ["):-1] for line in text.splitlines()
          if line.startswith("flanjax arg")] == ["train", "--model_dir=/gcs/b/run 1", *flags]
  assert "gcloud compute tpus tpu-vm scp" in text and "--worker=all" in text
  assert "gcsfuse --implicit-dirs --rename-dir-limit=1000000 b /gcs/b" in text
  assert "--worker=0 --command tail" in text  # then it follows worker 0's log
  assert (home / "flanjax_train.pid").exists() and (home / "flanjax" / "setup.py").exists()
  # Without train flags: no empty argument.
  log.write_text("")
  subprocess.run(["bash", f"{REPO}/launch/tpu_vm.sh", "my-tpu", "zone-a", "/gcs/b/run"],
                 env=env, capture_output=True, text=True, timeout=60, check=True)
  for _ in range(50):
    if "flanjax arg" in log.read_text():
      break
    subprocess.run(["sleep", "0.1"])
  assert [line for line in log.read_text().splitlines() if line.startswith("flanjax arg")] == [
      "flanjax arg [train]", "flanjax arg [--model_dir=/gcs/b/run]"]


def test_launch_scripts_refuse_a_flag_or_gs_path_as_model_dir(tmp_path):
  env, log, _ = _stubs(tmp_path)
  for script, args, want in (
      ("tpu_vm.sh", ["t", "z", "--gin_file=x.gin"], "the third argument is MODEL_DIR, got the flag"),
      ("tpu_vm.sh", ["t", "z", "gs://b/run"], "set GCS_BUCKET and use /gcs/<bucket>/"),
      ("gpu_host.sh", ["--gin_file=x.gin"], "the first argument is MODEL_DIR, got the flag"),
      ("gpu_slurm.sbatch", ["--gin_file=x.gin"], "the first argument is MODEL_DIR, got the flag")):
    out = subprocess.run(["bash", f"{REPO}/launch/{script}", *args], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and want in out.stderr, (script, out.stderr)
  assert not log.exists()  # nothing was sent or started


def test_tpu_vm_refuses_to_start_beside_a_run_still_going(tmp_path):
  """Re-running tpu_vm.sh while its last run lives would replace that run's code and venv under
  it and start a second trainer on the same model_dir: each host refuses, naming the pid."""
  env, log, home = _stubs(tmp_path)
  alive = subprocess.Popen(["sleep", "60"])
  try:
    (home / "flanjax_train.pid").write_text(str(alive.pid))
    out = subprocess.run(["bash", f"{REPO}/launch/tpu_vm.sh", "my-tpu", "zone-a", "/gcs/b/run"],
                         env=env, capture_output=True, text=True, timeout=60)
  finally:
    alive.kill()
  assert out.returncode == 2
  assert f"the last flanjax train (pid {alive.pid}) is still running" in out.stderr
  assert "flanjax arg" not in log.read_text() and not (home / "flanjax").exists()
