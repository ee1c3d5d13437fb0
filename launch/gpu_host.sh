#!/usr/bin/env bash
# Single GPU host (all local GPUs, one process): `launch/gpu_host.sh MODEL_DIR [train flags...]`.
# The mesh uses every local GPU (train.mesh_shape=(-1, 1): data parallel; set
# --gin.train.mesh_shape="(4, 2)" for data x model). Re-run the same command to resume.
set -euo pipefail
if [ $# -lt 1 ]; then
  sed -n '2,4p' "$0" >&2; exit 2
fi
MODEL_DIR=$1; shift
case $MODEL_DIR in -*)
  echo "$0: the first argument is MODEL_DIR, got the flag '$MODEL_DIR' (usage: $0 MODEL_DIR [train flags...])" >&2
  exit 2;;
esac
# cuBLAS for every GEMM: same step time, ~25 % less compile time; no dot merger: -0.6 % step
# (it copied merged projections apart; docs/performance.md);
# the latency-hiding scheduler overlaps collectives with compute on multi-GPU meshes.
# The user's XLA_FLAGS come last, so they can override each of these.
export XLA_FLAGS="--xla_gpu_enable_triton_gemm=false --xla_gpu_dot_merger_threshold_mb=0 --xla_gpu_enable_latency_hiding_scheduler=true ${XLA_FLAGS:-}"
# JAX pools 75 % of GPU memory by default; T5-large at batch 112 or xl at 48 on an 80 GB H100
# need ~70 GB (docs/performance.md). 90 % leaves ~8 GB outside the pool (NCCL, cuDNN).
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
exec flanjax train --model_dir="$MODEL_DIR" "$@"
