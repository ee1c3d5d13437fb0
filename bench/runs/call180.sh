# Call 180 (session 25): the session's final code on the GPU machine (JAX, no TensorFlow):
# `flanjax train` pip-installed through launch/gpu_host.sh, base b64 in the fine-tuning
# configuration: a first Ctrl-C (SIGINT) mid-run must finish the step, save, and exit 130; the
# same command then resumes from that step to 80 steps. Runs from an export of the commit
# (`.clean`, carried with `.whl`).
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
  --gin.train.checkpoint_period=50 --gin.train.log_period=10 --gin.train.num_steps=80)
# launch/gpu_host.sh execs flanjax train: SIGINT goes to the trainer itself. Job control on:
# without it a background job starts with SIGINT ignored (and a trainer keeps it ignored).
set -m
bash $REPO/launch/gpu_host.sh /tmp/m_base "${ARGS[@]}" > $OUT/train_int.log 2>&1 &
PID=$!
for i in $(seq 1 240); do  # wait for step 20's log line, then Ctrl-C
  grep -q "step 20/80" $OUT/train_int.log && break; sleep 1; done
kill -INT $PID; wait $PID; echo "interrupted run rc $?"
grep -v "^\s*$" $OUT/train_int.log | tail -4 | cut -c1-300
ls /tmp/m_base
timeout 200 bash $REPO/launch/gpu_host.sh /tmp/m_base "${ARGS[@]}" > $OUT/resume.log 2>&1
echo "resume rc $?"; grep -v "^\s*$" $OUT/resume.log | tail -3 | cut -c1-300
python3 -c "
import json; rows=[json.loads(l) for l in open('/tmp/m_base/metrics.jsonl')]
print('logged steps', [r['step'] for r in rows if r['split']=='train'][:3], '...', max(r['step'] for r in rows))
print('model info vocabulary', json.load(open('/tmp/m_base/flanjax_model.json'))['vocabulary'])"
