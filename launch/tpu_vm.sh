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
# GCS_BUCKET set, every host mounts gs://$GCS_BUCKET at /gcs/$GCS_BUCKET (gcsfuse, with directory
# renames on, which checkpoint saves need) first; a gs:// MODEL_DIR is refused (it would be a
# local folder, lost with the VM). TFDS reads gs:// directly.
#
# Every host installs the same flanjax (this checkout's committed files, copied over) with
# jax[tpu] into a venv of $FLANJAX_PYTHON (default python3.11: flanjax needs Python >= 3.11; TPU VM
# images of Ubuntu 22.04 ship 3.10, see the error it prints), then starts the run detached
# (nohup: a dropped ssh session does not stop it; log in ~/flanjax_train.log on each host), and
# this script follows worker 0's log (Ctrl-C stops following, not training). jax.distributed
# auto-detects the pod's hosts; each reads its own shard of the data. The run resumes from
# MODEL_DIR's latest checkpoint, so re-running this script after a preemption continues the job
# (a host whose last run still lives refuses, naming its pid).
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,23p' "$0" >&2; exit 2
fi
TPU_NAME=$1; ZONE=$2; MODEL_DIR=$3; shift 3
case $MODEL_DIR in
  -*) echo "$0: the third argument is MODEL_DIR, got the flag '$MODEL_DIR' (usage: $0 TPU_NAME ZONE MODEL_DIR [train flags...])" >&2
      exit 2;;
  gs://*) echo "$0: MODEL_DIR $MODEL_DIR: checkpoints need a file system path every host sees; set GCS_BUCKET and use /gcs/<bucket>/..." >&2
      exit 2;;
esac
ARGS=""
if [ $# -gt 0 ]; then ARGS=$(printf '%q ' "$@"); fi
PY=${FLANJAX_PYTHON:-python3.11}
SRC="$(cd "$(dirname "$0")/.." && pwd)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ARCHIVE=$TMP/flanjax.tar.gz
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
  if [ -n "$(git -C "$SRC" status --porcelain)" ]; then
    echo "$0: note: uncommitted changes and untracked files in $SRC are not sent (the hosts get HEAD; git status lists them)" >&2
  fi
  git -C "$SRC" archive --format=tar.gz -o "$ARCHIVE" HEAD
else  # not a git checkout: the tree, without build outputs and venvs
  tar -C "$SRC" --exclude=.git --exclude='venv*' --exclude='.venv' --exclude=build \
    --exclude='*.egg-info' --exclude=__pycache__ -czf "$ARCHIVE" .
fi

gcloud compute tpus tpu-vm scp "$ARCHIVE" "$TPU_NAME":/tmp/flanjax.tar.gz --zone "$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command "
  set -eo pipefail
  if [ -f ~/flanjax_train.pid ] && kill -0 \$(cat ~/flanjax_train.pid) 2>/dev/null; then
    echo \"\$(hostname): the last flanjax train (pid \$(cat ~/flanjax_train.pid)) is still running: wait for it, or stop it (kill \$(cat ~/flanjax_train.pid): it saves first), then run this again\" >&2
    exit 2
  fi
  if ! command -v $(printf %q "$PY") >/dev/null; then
    echo \"\$(hostname): no $PY: flanjax needs Python >= 3.11 (e.g. sudo add-apt-repository -y ppa:deadsnakes/ppa && sudo apt-get install -y python3.11 python3.11-venv), or set FLANJAX_PYTHON\" >&2
    exit 2
  fi
  rm -rf ~/flanjax && mkdir -p ~/flanjax && tar -C ~/flanjax -xzf /tmp/flanjax.tar.gz
  $(printf %q "$PY") -m venv ~/flanjax-venv && . ~/flanjax-venv/bin/activate
  pip install -q ~/flanjax'[tpu]'
  if [ -n '${GCS_BUCKET:-}' ] && ! mountpoint -q /gcs/${GCS_BUCKET:-}; then
    sudo mkdir -p /gcs/${GCS_BUCKET:-} && sudo chown \$(id -u) /gcs/${GCS_BUCKET:-}
    gcsfuse --implicit-dirs --rename-dir-limit=1000000 ${GCS_BUCKET:-} /gcs/${GCS_BUCKET:-}
  fi
  nohup setsid flanjax train --model_dir=$(printf %q "$MODEL_DIR") $ARGS \
    >> ~/flanjax_train.log 2>&1 < /dev/null &
  echo \$! > ~/flanjax_train.pid
  echo \"\$(hostname): flanjax train started (pid \$!), log ~/flanjax_train.log\"
"
echo "Following worker 0's log (Ctrl-C stops following; training goes on). Again later:"
echo "  gcloud compute tpus tpu-vm ssh $TPU_NAME --zone $ZONE --worker=0 --command 'tail -f ~/flanjax_train.log'"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=0 --command \
  'tail -n 20 --pid="$(cat ~/flanjax_train.pid)" -F ~/flanjax_train.log'
