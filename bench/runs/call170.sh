# Call 170 (session 22): how long an asynchronous Orbax save holds the loop (call 167: ~1 s per GB
# of train state), with Orbax's default pinned host buffers and with pageable copies; a tree
# shaped like T5-large's params (3 GB, 500 leaves) and one of base's (1.3 GB, 200 leaves).
source bench/runs/setup.sh
cd .clean
python3 bench/save_blocking.py --gb 3 --leaves 500 --repeats 3
python3 bench/save_blocking.py --gb 1.3 --leaves 200 --repeats 3
