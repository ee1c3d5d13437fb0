"""Host input-pipeline throughput: template + tokenize + pack, in packed rows/s per core.

    python bench/pipeline.py [--mixture offline] [--inputs 512 --targets 128] [--threads 1]

Runs flanjax.pipeline.train_batches on the offline collection (prepared locally on first use)
with tf.data limited to `--threads` threads, and prints one JSON line: packed rows/s, rows/s
per core, examples/s, tokens/s and the cores needed to feed `--target_rows_per_s` rows/s
(default 1,100: T5-base at 50% MFU on one H100 with 512/128 packed rows).

Warm-up matters: every task of the mixture fills a 1,000-example shuffle buffer the first time
the sampler picks it, so the first ~(tasks x 1,000) examples cost about twice the steady-state
time. The default 40 warm-up batches (~14k examples for the offline mixture at 512/128) cover
that; with 5 the offline mixture measured 174 rows/s/core instead of 234 at steady state.
"""
import argparse
import json
import os
import time


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--mixture", default="offline")
  p.add_argument("--inputs", type=int, default=512)
  p.add_argument("--targets", type=int, default=128)
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--warmup_batches", type=int, default=40,
                 help="batches before timing (cover the tasks' shuffle-buffer fill)")
  p.add_argument("--batches", type=int, default=40)
  p.add_argument("--threads", type=int, default=1, help="tf.data / TF op threads (cores used)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--target_rows_per_s", type=float, default=1100.0)
  args = p.parse_args(argv)

  import numpy as np
  import tensorflow as tf
  tf.config.threading.set_inter_op_parallelism_threads(args.threads)
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)

  from flanjax import pipeline
  t0 = time.perf_counter()
  ds = pipeline.train_dataset(args.mixture, task_feature_lengths={"inputs": args.inputs,
                                                                  "targets": args.targets},
                              batch_size=args.batch_size, seed=args.seed)
  options = tf.data.Options()
  options.threading.private_threadpool_size = args.threads
  options.threading.max_intra_op_parallelism = 1
  it = ds.with_options(options).as_numpy_iterator()
  for _ in range(args.warmup_batches):
    next(it)
  build_s = time.perf_counter() - t0
  examples = tokens = 0
  t1 = time.perf_counter()
  for _ in range(args.batches):
    b = next(it)
    seg = b["encoder_segment_ids"]
    examples += int(sum(len(np.unique(r[r > 0])) for r in seg))
    tokens += int((b["encoder_input_tokens"] > 0).sum() + (b["decoder_target_tokens"] > 0).sum())
  dt = time.perf_counter() - t1
  rows = args.batches * args.batch_size
  rps = rows / dt
  out = {
      "mixture": args.mixture, "inputs": args.inputs, "targets": args.targets,
      "batch_size": args.batch_size, "threads": args.threads, "batches": args.batches,
      "packed_rows_per_s": round(rps, 1), "packed_rows_per_s_per_core": round(rps / args.threads, 1),
      "examples_per_row": round(examples / rows, 2), "examples_per_s": round(examples / dt, 1),
      "nonpad_tokens_per_s": round(tokens / dt, 1), "startup_s": round(build_s, 1),
      "target_rows_per_s": args.target_rows_per_s,
      "cores_needed_for_target": round(args.target_rows_per_s / (rps / args.threads), 1),
      "host_cpus": os.cpu_count(),
  }
  print(json.dumps(out))
  return out


if __name__ == "__main__":
  main()
