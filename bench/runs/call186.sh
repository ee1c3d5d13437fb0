# Call 186 (session 28): the session's final code on the GPU machine (JAX, no TensorFlow): the
# model's attention gradients against einsum; the three headlines (large b112, xl b48, base b256;
# 95 % pool, both norm kernels) on today's code; `flanjax train` pip-installed through
# launch/gpu_host.sh (its XLA flags now put the user's last): base b64 in the fine-tuning
# configuration, 60 steps with a save at 50, then a resume to 80. Runs from an export of the
# commit (`.clean`, carried with `.whl`).
source bench/runs/setup.sh
REPO=$PWD/.clean
cd $REPO
PYTHONPATH=.:$PYTHONPATH timeout 100 python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
PYTHONPATH=.:$PYTHONPATH timeout 100 python3 bench/check_attention.py --impl pallas --packed 2>&1 | tail -1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
for s in "large 112" "xl 48" "base 256"; do set -- $s
  timeout 170 python3 bench/train_throughput.py --steps 10 --log-dir /tmp/logs \
    --out $OUT/r186.jsonl --sizes $1 --batch $2 --set norm_impl=pallas --variant headline \
    --timeout 165 | tail -1
done
grep -h '"error"' $OUT/r186.jsonl | cut -c1-600
unset XLA_PYTHON_CLIENT_MEM_FRACTION
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/fj $REPO \
  > $OUT/install.log 2>&1 || { echo "pip install failed"; tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=/tmp/fj:$PYTHONPATH PATH=/tmp/fj/bin:$PATH
python3 -c "import tensorflow" 2>&1 | tail -1
cd /tmp
run() {  # model_dir steps timeout log [extra flags]
  timeout $3 bash $REPO/launch/gpu_host.sh $1 --gin_file=models/t5_1_1_base.gin \
    --gin_file=runs/finetune.gin --gin.train.synthetic_data=True --gin.train.mixture=None \
    --gin.train.batch_size=64 '--gin.train.task_feature_lengths={"inputs": 512, "targets": 128}' \
    --gin.train.checkpoint_period=50 --gin.train.log_period=20 --gin.train.num_steps=$2 "${@:5}" \
    > $OUT/$4 2>&1
  echo "$4 rc $?"; grep -v "^\s*$" $OUT/$4 | tail -3 | cut -c1-400
}
run /tmp/m_base 60 150 train_base.log
run /tmp/m_base 80 100 resume_base.log
