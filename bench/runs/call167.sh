# Call 167 (session 22): the user's path on the GPU. flanjax pip-installed (no TensorFlow on the
# machine) and run from outside the repo through launch/gpu_host.sh, on synthetic data in the
# fine-tuning configuration (runs/finetune.gin: packed rows, dropout 0.05) at 512/128: the CLI's
# own tokens/s and MFU (metrics.jsonl, its log lines) against the benchmark's rows for the same
# step (call 163: base b64 78.7 ms, large b64 227.8 ms); base then runs the same command with 25
# more steps, which resumes from its last checkpoint. Runs from an export of the commit (`.clean`,
# carried with `.whl`).
source bench/runs/setup.sh
REPO=$PWD/.clean
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/fj $REPO \
  > $OUT/install.log 2>&1 || { echo "pip install failed"; tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=/tmp/fj:$PYTHONPATH PATH=/tmp/fj/bin:$PATH
cd /tmp
run() {  # size batch steps timeout log
  timeout $4 bash $REPO/launch/gpu_host.sh /tmp/m_$1 --gin_file=models/t5_1_1_$1.gin \
    --gin_file=runs/finetune.gin --gin.train.synthetic_data=True --gin.train.mixture=None \
    --gin.train.batch_size=$2 '--gin.train.task_feature_lengths={"inputs": 512, "targets": 128}' \
    --gin.train.checkpoint_period=50 --gin.train.log_period=25 --gin.train.num_steps=$3 > $OUT/$5 2>&1
  echo "$5 rc $?"; grep -v "^\s*$" $OUT/$5 | tail -3 | cut -c1-300
}
run base 64 150 200 train_base.log
run base 64 175 140 resume_base.log
cp /tmp/m_base/metrics.jsonl $OUT/metrics_base.jsonl; ls /tmp/m_base
run large 64 60 240 train_large.log
cp /tmp/m_large/metrics.jsonl $OUT/metrics_large.jsonl
