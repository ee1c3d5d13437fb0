# Sourced at the start of each device command: wheels (gin-config, tensorboardX) and env.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PYTHONPATH PYTHONUNBUFFERED=1
B="python3 bench/train_throughput.py --steps 10 --log-dir $OUT/logs"
