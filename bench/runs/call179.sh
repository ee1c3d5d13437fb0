# Call 179 (session 24): the session's final code on the GPU machine (JAX, no TensorFlow): the
# model's attention gradients against einsum; the large headline (b112, 95 % pool, both norm
# kernels); `flanjax train` pip-installed through launch/gpu_host.sh: base b64 in the fine-tuning
# configuration (100 steps, a save at 50, then a resume to 120: checkpoints now record the start),
# and base scanned (Adafactor per layer of the scanned stacks, now the default) for 60 steps.
# Runs from an export of the commit (`.clean`, carried with `.whl`).
source bench/runs/setup.sh
REPO=$PWD/.clean
cd $REPO
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl pallas --packed 2>&1 | tail -1
XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 timeout 200 python3 bench/train_throughput.py --steps 10 \
  --log-dir /tmp/logs --out $OUT/r179.jsonl --sizes large --batch 112 --set norm_impl=pallas \
  --variant headline --timeout 195 | tail -1
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/fj $REPO \
  > $OUT/install.log 2>&1 || { echo "pip install failed"; tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=/tmp/fj:$PYTHONPATH PATH=/tmp/fj/bin:$PATH
python3 -c "import tensorflow" 2>&1 | tail -1
cd /tmp
run() {  # model_dir steps timeout log [extra flags]
  timeout $3 bash $REPO/launch/gpu_host.sh $1 --gin_file=models/t5_1_1_base.gin \
    --gin_file=runs/finetune.gin --gin.train.synthetic_data=True --gin.train.mixture=None \
    --gin.train.batch_size=64 '--gin.train.task_feature_lengths={"inputs": 512, "targets": 128}' \
    --gin.train.checkpoint_period=50 --gin.train.log_period=25 --gin.train.num_steps=$2 "${@:5}" \
    > $OUT/$4 2>&1
  echo "$4 rc $?"; grep -v "^\s*$" $OUT/$4 | tail -3 | cut -c1-400
}
run /tmp/m_base 100 200 train_base.log
run /tmp/m_base 120 140 resume_base.log
python3 - <<'P'
import json, glob
print("meta init_checkpoint:", [json.load(open(f)).get("init_checkpoint", "absent")
                                for f in sorted(glob.glob("/tmp/m_base/*/meta/metadata"))])
P
run /tmp/m_scan 60 200 train_scan.log --gin.T5Config.scan_layers=True
grep -h '"split": "train"' /tmp/m_scan/metrics.jsonl | tail -2 | cut -c1-300
