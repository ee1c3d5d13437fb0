# Call 181 (session 25; run again as call 182 on the final commit): the final trainer on the GPU
# machine (JAX, no TensorFlow):
# `flanjax train` pip-installed through launch/gpu_host.sh, base b64 in the fine-tuning
# configuration for 60 steps (checkpoints' meta now record the OptimizerConfig), a resume to 80
# with another learning rate (a one-line note), and one with another optimizer (refused before
# the restore). Runs from an export of the commit (`.clean`, carried with `.whl`).
source bench/runs/setup.sh
REPO=$PWD/.clean
cd $REPO
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/fj $REPO \
  > $OUT/install.log 2>&1 || { echo "pip install failed"; tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=/tmp/fj:$PYTHONPATH PATH=/tmp/fj/bin:$PATH
python3 -c "import tensorflow" 2>&1 | tail -1
cd /tmp
ARGS=(--gin_file=models/t5_1_1_base.gin --gin_file=runs/finetune.gin
  --gin.train.synthetic_data=True --gin.train.mixture=None --gin.train.batch_size=64
  '--gin.train.task_feature_lengths={"inputs": 512, "targets": 128}'
  --gin.train.checkpoint_period=30 --gin.train.log_period=20)
run() {  # log, then flags
  timeout 200 bash $REPO/launch/gpu_host.sh /tmp/m_base "${ARGS[@]}" "${@:2}" > $OUT/$1 2>&1
  echo "$1 rc $?"; grep -v "^\s*$" $OUT/$1 | tail -3 | cut -c1-400
}
run train.log --gin.train.num_steps=60
run resume_lr.log --gin.train.num_steps=80 --gin.OptimizerConfig.learning_rate=5e-4
run resume_adamw.log --gin.train.num_steps=100 "--gin.OptimizerConfig.name='adamw'"
ls /tmp/m_base
