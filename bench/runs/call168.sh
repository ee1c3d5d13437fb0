# Call 168 (nvidia-h200-x2, session 22): data-parallel scaling on today's code (call 38 measured
# session 5's code at b64 a GPU): T5-large at the headline batch, b112 a GPU, 95 % pool, both norm
# kernels: one GPU, then (2, 1) at b224. Then `flanjax train` itself on both GPUs
# (pip-installed, launch/gpu_host.sh: mesh (-1, 1)), base b128 (64 a GPU) in the fine-tuning
# configuration on synthetic data, 100 steps with a save at 50, and the same command to 120 (a
# resume). Runs from an export of the commit (`.clean`, carried with `.whl`).
source bench/runs/setup.sh
REPO=$PWD/.clean
cd $REPO
B="python3 bench/train_throughput.py --steps 10 --log-dir $OUT/logs --set norm_impl=pallas"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.95
CUDA_VISIBLE_DEVICES=0 timeout 170 $B --out $OUT/r168.jsonl --sizes large --batch 112 \
  --variant large_1gpu --mesh 1,1 --timeout 165 | tail -1
timeout 200 $B --out $OUT/r168.jsonl --sizes large --batch 224 --variant large_dp2 --mesh 2,1 \
  --timeout 195 | tail -1
unset XLA_PYTHON_CLIENT_MEM_FRACTION
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/fj $REPO \
  > $OUT/install.log 2>&1 || { echo "pip install failed"; tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=/tmp/fj:$PYTHONPATH PATH=/tmp/fj/bin:$PATH
cd /tmp
run() {  # steps timeout log
  timeout $2 bash $REPO/launch/gpu_host.sh /tmp/m_dp --gin_file=models/t5_1_1_base.gin \
    --gin_file=runs/finetune.gin --gin.train.synthetic_data=True --gin.train.mixture=None \
    --gin.train.batch_size=128 '--gin.train.task_feature_lengths={"inputs": 512, "targets": 128}' \
    --gin.train.checkpoint_period=50 --gin.train.log_period=25 --gin.train.num_steps=$1 > $OUT/$3 2>&1
  echo "$3 rc $?"; grep -v "^\s*$" $OUT/$3 | tail -4 | cut -c1-300
}
run 100 150 train_dp.log
run 120 100 resume_dp.log
cp /tmp/m_dp/metrics.jsonl $OUT/metrics_dp.jsonl; ls /tmp/m_dp
