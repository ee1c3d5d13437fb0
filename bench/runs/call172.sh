# Call 172 (session 23): the session's final code on the GPU machine (JAX, no TensorFlow):
# `flanjax train` pip-installed, through launch/gpu_host.sh, base b64 in the fine-tuning
# configuration on synthetic data, 100 steps with a save at 50, then the same command to 120 (a
# resume); then a model file alone with `--gin.OptimizerConfig.learning_rate=0.002` (tiny
# model, 20 steps), whose metrics must log that rate (before this session it was dropped and the
# run trained at the default 1e-3). Runs from an export of the commit (`.clean`).
source bench/runs/setup.sh
REPO=$PWD/.clean
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/fj $REPO \
  > $OUT/install.log 2>&1 || { echo "pip install failed"; tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=/tmp/fj:$PYTHONPATH PATH=/tmp/fj/bin:$PATH
python3 -c "import orbax.checkpoint as o, jax; print('orbax', o.__version__, 'jax', jax.__version__)"
python3 -c "import tensorflow" 2>&1 | tail -1
cd /tmp
run() {  # steps timeout log [extra flags]
  timeout $2 bash $REPO/launch/gpu_host.sh /tmp/m_base --gin_file=models/t5_1_1_base.gin \
    --gin_file=runs/finetune.gin --gin.train.synthetic_data=True --gin.train.mixture=None \
    --gin.train.batch_size=64 '--gin.train.task_feature_lengths={"inputs": 512, "targets": 128}' \
    --gin.train.checkpoint_period=50 --gin.train.log_period=25 --gin.train.num_steps=$1 "${@:4}" \
    > $OUT/$3 2>&1
  echo "$3 rc $?"; grep -v "^\s*$" $OUT/$3 | tail -3 | cut -c1-400
}
run 100 200 train_base.log
run 120 140 resume_base.log
ls /tmp/m_base
timeout 150 bash $REPO/launch/gpu_host.sh /tmp/m_tiny --gin_file=models/t5_1_1_tiny.gin \
  --gin.train.synthetic_data=True --gin.train.batch_size=32 --gin.train.num_steps=20 \
  --gin.train.log_period=10 --gin.OptimizerConfig.learning_rate=0.002 > $OUT/tiny.log 2>&1
echo "tiny rc $?"; tail -2 $OUT/tiny.log | cut -c1-300
python3 - <<'P'
import json
rows = [json.loads(l) for l in open("/tmp/m_tiny/metrics.jsonl")]
print("tiny learning_rate", sorted({r["learning_rate"] for r in rows if r.get("split") == "train"}))
P
grep -n "OptimizerConfig" /tmp/m_tiny/config.gin
cp /tmp/m_base/metrics.jsonl $OUT/metrics_base.jsonl
