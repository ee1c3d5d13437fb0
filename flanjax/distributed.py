"""Multi-host start-up: `jax.distributed.initialize` from flags or the environment.

Order of precedence:
  1. explicit arguments (the `--coordinator_address/--num_processes/--process_id` flags);
  2. env FLANJAX_COORDINATOR_ADDRESS, FLANJAX_NUM_PROCESSES, FLANJAX_PROCESS_ID (GPU clusters);
  3. SLURM (SLURM_JOB_ID + SLURM_NTASKS > 1, inside an `srun` step; one task per node gets all
     of the node's GPUs) and multi-host Cloud TPU (a TPU VM pod slice's workers from the
     metadata server, TPU_PROCESS_ADDRESSES / TPU_WORKER_HOSTNAMES with several hosts, or
     MEGASCALE_COORDINATOR_ADDRESS): jax's own cluster auto-detection;
  4. otherwise a single process: nothing to do.
Must run before anything touches a JAX device. On CPU, jax uses gloo collectives across processes.
"""
from __future__ import annotations

import logging
import os

import jax

from flanjax.errors import FlanjaxError

log = logging.getLogger(__name__)


def _env_int(name):
  v = os.environ.get(name)
  if v in (None, ""):
    return None
  try:
    return int(v)
  except ValueError:
    raise FlanjaxError(f"Environment variable {name}={v!r} must be an integer.") from None


# What jax's SLURM auto-detection reads (jax's SlurmCluster.is_env_present): set by `srun` for
# each task of a job step, not in an `salloc` shell or an sbatch script outside `srun`.
SLURM_STEP_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
                   "SLURM_LOCALID")


def detect_cluster() -> str | None:
  """'slurm' / 'tpu' when the environment is a multi-process job jax can auto-detect.

  A SLURM job of several tasks outside an `srun` step (jax would find no coordinator there) is
  a FlanjaxError saying how to launch it.
  """
  ntasks = _env_int("SLURM_NTASKS") or 1
  if "SLURM_JOB_ID" in os.environ and ntasks > 1:
    missing = [v for v in SLURM_STEP_VARS if v not in os.environ]
    if missing:
      raise FlanjaxError(
          f"SLURM job {os.environ['SLURM_JOB_ID']} has {ntasks} tasks but this process is not "
          f"in an srun step (no {', '.join(missing)}): launch with `srun flanjax ...`, or pass "
          "--coordinator_address, --num_processes and --process_id.")
    return "slurm"
  hosts = os.environ.get("TPU_PROCESS_ADDRESSES") or os.environ.get("TPU_WORKER_HOSTNAMES", "")
  if len([h for h in hosts.split(",") if h]) > 1 or os.environ.get(
      "MEGASCALE_COORDINATOR_ADDRESS") or tpu_vm_workers() > 1:
    return "tpu"
  return None


def tpu_vm_workers() -> int:
  """How many hosts the Cloud TPU VM slice this host belongs to has (jax's GCE detection: the
  metadata server's worker-network-endpoints, as on `gcloud compute tpus tpu-vm create` pods,
  where no environment variable names the workers); 0 off a Cloud TPU VM."""
  try:
    from jax._src.clusters.cloud_tpu_cluster import GceTpuCluster
    if not GceTpuCluster.is_env_present():
      return 0
    return len(GceTpuCluster._get_worker_list_in_slice())  # noqa: SLF001
  except Exception as e:  # noqa: BLE001 (no metadata server: not a TPU VM pod)
    log.debug("no Cloud TPU VM workers found: %s", e)
    return 0


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids=None) -> bool:
  """Initialises multi-process JAX if this is a multi-process job. Returns True if it did."""
  if jax.distributed.is_initialized():
    return True
  coordinator_address = coordinator_address or os.environ.get("FLANJAX_COORDINATOR_ADDRESS")
  num_processes = num_processes if num_processes is not None else _env_int(
      "FLANJAX_NUM_PROCESSES")
  process_id = process_id if process_id is not None else _env_int("FLANJAX_PROCESS_ID")
  explicit = [coordinator_address, num_processes, process_id]
  if any(x is not None for x in explicit):
    if any(x is None for x in explicit):
      raise FlanjaxError(
          "Multi-host needs all of --coordinator_address (host:port of process 0), "
          "--num_processes and --process_id (or FLANJAX_COORDINATOR_ADDRESS, "
          "FLANJAX_NUM_PROCESSES, FLANJAX_PROCESS_ID); got "
          f"coordinator_address={coordinator_address}, num_processes={num_processes}, "
          f"process_id={process_id}.")
    if not 0 <= process_id < num_processes:
      raise FlanjaxError(f"process_id={process_id} must be in [0, num_processes={num_processes}).")
    if num_processes == 1:
      return False
    log.info("jax.distributed.initialize(%s, num_processes=%d, process_id=%d)",
             coordinator_address, num_processes, process_id)
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id,
                               local_device_ids=local_device_ids)
    return True
  cluster = detect_cluster()
  if cluster is not None:
    if cluster == "slurm" and local_device_ids is None:
      local_device_ids = slurm_local_device_ids()
    log.info("jax.distributed.initialize() with %s auto-detection (local devices: %s)", cluster,
             "jax's default" if local_device_ids is None else local_device_ids)
    jax.distributed.initialize(local_device_ids=local_device_ids)
    return True
  return False


def slurm_local_device_ids() -> list[int] | None:
  """All of the node's GPUs for a SLURM step of one task per node, else None (jax's default).

  jax's SLURM detection gives each task the one GPU numbered by its SLURM_LOCALID, right for
  one task per GPU; with one task per node (launch/gpu_slurm.sbatch) that left 7 of 8 GPUs
  idle. The node's GPUs are those srun makes visible (CUDA_VISIBLE_DEVICES, else
  SLURM_GPUS_ON_NODE).
  """
  per_node = (os.environ.get("SLURM_STEP_TASKS_PER_NODE")
              or os.environ.get("SLURM_TASKS_PER_NODE") or "")
  # "1(x4)" or "1,1": one task on each node; "2(x2)", "8": several.
  if not per_node or any(part.split("(")[0] != "1" for part in per_node.split(",")):
    return None
  visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
  count = len(visible) or _env_int("SLURM_GPUS_ON_NODE") or 0
  return list(range(count)) if count > 1 else None
