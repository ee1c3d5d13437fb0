# Call 169 (session 22): call 167's base run on the session's final trainer and checkpoint code
# (the resume now checks the saved model and data settings and the saved parameter shapes before
# restoring, and writes flanjax_model.json after it): `flanjax train` pip-installed, through
# launch/gpu_host.sh, base b64 in the fine-tuning configuration on synthetic data, 150 steps, then
# the same command to 175 (a resume), then once more with a changed model field, which must be
# refused with flanjax_model.json unchanged. Runs from an export of the commit (`.clean`).
source bench/runs/setup.sh
REPO=$PWD/.clean
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/fj $REPO \
  > $OUT/install.log 2>&1 || { echo "pip install failed"; tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=/tmp/fj:$PYTHONPATH PATH=/tmp/fj/bin:$PATH
cd /tmp
run() {  # steps timeout log [extra flags]
  timeout $2 bash $REPO/launch/gpu_host.sh /tmp/m_base --gin_file=models/t5_1_1_base.gin \
    --gin_file=runs/finetune.gin --gin.train.synthetic_data=True --gin.train.mixture=None \
    --gin.train.batch_size=64 '--gin.train.task_feature_lengths={"inputs": 512, "targets": 128}' \
    --gin.train.checkpoint_period=50 --gin.train.log_period=25 --gin.train.num_steps=$1 "${@:4}" \
    > $OUT/$3 2>&1
  echo "$3 rc $?"; grep -v "^\s*$" $OUT/$3 | tail -3 | cut -c1-400
}
run 150 200 train_base.log
run 175 140 resume_base.log
sha256sum /tmp/m_base/flanjax_model.json
run 200 100 refused.log --gin.T5Config.relative_attention_num_buckets=16
sha256sum /tmp/m_base/flanjax_model.json; ls /tmp/m_base
cp /tmp/m_base/metrics.jsonl $OUT/metrics_base.jsonl
