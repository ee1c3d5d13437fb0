#!/usr/bin/env bash
# Launch a flanjax training run on every host of a Cloud TPU VM pod slice.
#
#   launch/tpu_vm.sh TPU_NAME ZONE MODEL_DIR [flanjax train flags...]
#
# e.g. Flan-T5-base on the FLAN 2021 mixture from a converted checkpoint, on a v4-32:
#   GCS_BUCKET=bucket launch/tpu_vm.sh my-v4-32 us-central2-b /gcs/bucket/flan_t5_base_ft \
#     --gin_file=runs/finetune.gin --gin.train.init_checkpoint="'/gcs/bucket/flan_t5_base'" \
#     --tfds_data_dir=gs://bucket/tfds
#
# Checkpoints go through the file system: MODEL_DIR must be a folder every host sees. With
# GCS_BUCKET set, every host mounts gs://$GCS_BUCKET at /gcs/$GCS_BUCKET (gcsfuse) first; a gs://
# MODEL_DIR is refused by flanjax (it would be a local folder, lost with the VM). TFDS reads
# gs:// directly.
#
# Every host installs the same flanjax (this checkout, copied over) with jax[tpu] and runs the
# same command; jax.distributed.initialize auto-detects the TPU topology, and each host reads
# its own shard of the data. The run resumes from MODEL_DIR's latest checkpoint on restart, so
# re-running this script after a preemption continues the job.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,19p' "$0"; exit 2
fi
TPU_NAME=$1; ZONE=$2; MODEL_DIR=$3; shift 3
ARGS=$(printf '%q ' "$@")
SRC="$(cd "$(dirname "$0")/.." && pwd)"
ARCHIVE=$(mktemp -d)/flanjax.tar.gz
tar -C "$SRC" --exclude=.git --exclude='venv*' --exclude='.venv' -czf "$ARCHIVE" .

gcloud compute tpus tpu-vm scp "$ARCHIVE" "$TPU_NAME":/tmp/flanjax.tar.gz --zone "$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command "
  set -eo pipefail
  rm -rf ~/flanjax && mkdir -p ~/flanjax && tar -C ~/flanjax -xzf /tmp/flanjax.tar.gz
  python3 -m venv ~/flanjax-venv && . ~/flanjax-venv/bin/activate
  pip install -q ~/flanjax'[tpu]'
  if [ -n '${GCS_BUCKET:-}' ]; then
    sudo mkdir -p /gcs/${GCS_BUCKET:-} && sudo chown \$(id -u) /gcs/${GCS_BUCKET:-}
    mountpoint -q /gcs/${GCS_BUCKET:-} || gcsfuse --implicit-dirs ${GCS_BUCKET:-} /gcs/${GCS_BUCKET:-}
  fi
  flanjax train --model_dir=$(printf %q "$MODEL_DIR") $ARGS 2>&1 | tee -a ~/flanjax_train.log
"
