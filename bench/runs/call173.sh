# Call 173 (session 23): the session's final code on the GPU: the model's attention gradients
# against einsum (cuDNN forward + Pallas backward; packed); T5-large scanned with full remat
# (Adafactor's clipping and parameter scale now per layer of the scanned stack: compile time and
# step against call 121's 10.2 s / 292 ms); `flanjax train` (pip-installed) base b64 in the
# fine-tuning configuration (dropout 0.05: the encoder's output dropout is per element now).
# Runs from an export of the commit (`.clean`, carried with `.whl`).
source bench/runs/setup.sh
REPO=$PWD/.clean
cd $REPO
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl cudnn_pallas 2>&1 | tail -1
PYTHONPATH=.:$PYTHONPATH python3 bench/check_attention.py --impl pallas --packed 2>&1 | tail -1
B="python3 bench/train_throughput.py --steps 10 --log-dir $OUT/logs"
timeout 200 $B --out $OUT/r173.jsonl --sizes large --batch 64 --set scan_layers=true \
  --set remat_policy=full --variant scanned --timeout 195 | tail -1
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/fj $REPO \
  > $OUT/install.log 2>&1 || { echo "pip install failed"; tail -5 $OUT/install.log; exit 1; }
export PYTHONPATH=/tmp/fj:$PYTHONPATH PATH=/tmp/fj/bin:$PATH
cd /tmp
timeout 200 bash $REPO/launch/gpu_host.sh /tmp/m_base --gin_file=models/t5_1_1_base.gin \
  --gin_file=runs/finetune.gin --gin.train.synthetic_data=True --gin.train.mixture=None \
  --gin.train.batch_size=64 '--gin.train.task_feature_lengths={"inputs": 512, "targets": 128}' \
  --gin.train.checkpoint_period=1000 --gin.train.log_period=25 --gin.train.num_steps=100 \
  > $OUT/train_base.log 2>&1
echo "train rc $?"; grep -v "^\s*$" $OUT/train_base.log | tail -4 | cut -c1-300
