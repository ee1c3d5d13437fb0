"""`flanjax infer`: predict or score JSONL rows (or a task's examples) with a checkpoint.

  flanjax infer --checkpoint DIR --mode predict --input in.jsonl --output out.jsonl
  flanjax infer --checkpoint DIR --mode score --task NAME --split validation --output out.jsonl

Input rows are JSON objects with `inputs` (and `targets` for scoring); every output row is the
input row plus `prediction` (predict) or `score` (score: the summed log-likelihood of the targets,
with `num_target_tokens`). The output file is written atomically when all rows are done.

Multi-host (as `flanjax eval`): --coordinator_address/--num_processes/--process_id, the FLANJAX_*
environment variables, or SLURM / Cloud TPU auto-detection start every process of the job; each
reads all rows, the batches are split over the processes' devices, and process 0 writes
--output.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Sequence
from typing import Any

from flanjax import reports
from flanjax.errors import FlanjaxError

log = logging.getLogger("flanjax.infer")
MODES = ("predict", "score")


class InferError(FlanjaxError):
  """A bad `flanjax infer` request (missing fields, files, flags)."""


def read_rows(path: str, mode: str) -> list[dict[str, Any]]:
  """Reads JSONL rows, checking `inputs` (and `targets` when scoring) are strings."""
  if not os.path.exists(path):
    raise InferError(f"--input {path} does not exist.")
  if os.path.isdir(path):
    raise InferError(f"--input {path} is a directory; give a .jsonl file with one "
                     "{\"inputs\": ...} object per line.")
  rows = []
  needed = ("inputs", "targets") if mode == "score" else ("inputs",)
  for n, row in reports.iter_jsonl(path, InferError, object_hint=" with 'inputs'"):
    for field in needed:
      if field not in row:
        raise InferError(f"{path}:{n}: row has no {field!r} (fields: {sorted(row)}); "
                         f"--mode {mode} needs {' and '.join(repr(f) for f in needed)}.")
      if not isinstance(row[field], str):
        raise InferError(f"{path}:{n}: {field!r} must be a string, got "
                         f"{type(row[field]).__name__}.")
    rows.append(row)
  if not rows:
    raise InferError(f"--input {path} has no rows.")
  return rows


def task_rows(task: str, split: str, max_examples: int | None = None) -> list[dict[str, Any]]:
  """Rows {inputs, targets, task} from a registered task's split (raw pretokenized text)."""
  from flanjax import contamination, evaluation
  evaluation._import_catalog()
  out = []
  for t in evaluation.resolve_tasks(task, split):
    # One read, with the templates `flanjax eval` draws for these examples (EVAL_SEED).
    rows = contamination.mixture_texts(t.name, split, ("inputs_pretokenized",
                                                       "targets_pretokenized"),
                                       max_examples=max_examples, seed=evaluation.EVAL_SEED)
    out.extend({"task": t.name, "inputs": i, "targets": tg} for i, tg in rows)
  if not out:
    raise InferError(f"--task {task} yields no examples in its {split!r} split; choose another "
                     "--split (or --task).")
  return out


def load_vocabulary(checkpoint: str):
  """The vocabulary of `checkpoint` (a flanjax checkpoint or a Hugging Face directory), checked
  against its model's vocab_size before any parameter is loaded."""
  from flanjax import checkpoints, evaluation
  evaluation.check_checkpoint_path(checkpoint)
  config = evaluation.checkpoint_config(checkpoint)
  hf = evaluation._is_hf_dir(checkpoint)
  # As recorded (a flanjax checkpoint's is resolved by make_vocabulary: a gone file is named).
  info = (evaluation.checkpoint_vocabulary(checkpoint) if hf
          else checkpoints.read_model_info(checkpoint).get("vocabulary"))
  if info is None:
    if hf:
      raise InferError(f"--checkpoint {checkpoint} has no spiece.model, so its text cannot be "
                       f"encoded: copy the model's spiece.model into {checkpoint}.")
    raise InferError(f"--checkpoint {checkpoint} records no vocabulary, so its text cannot be "
                     "encoded: convert it again with its SentencePiece model, `flanjax convert "
                     f"--from {checkpoint} --to NEW_DIR --vocab spiece.model`, and use NEW_DIR.")
  vocabulary = checkpoints.make_vocabulary(info, None if hf else checkpoint)
  check_vocabulary(vocabulary, config, checkpoint)
  return vocabulary


def check_vocabulary(vocabulary, config, checkpoint: str | None = None) -> None:
  """InferError when `vocabulary` has more ids than the model's vocab_size (not its vocabulary:
  the model would read ids it has no embedding for)."""
  if vocabulary.vocab_size <= config.vocab_size:
    return
  if checkpoint is None:
    fix = "pass the vocabulary the model was trained with"
  else:
    from flanjax import evaluation
    fix = (f"put the model's own spiece.model in {checkpoint}" if evaluation._is_hf_dir(checkpoint)
           else "convert it again with the model's own SentencePiece model: `flanjax convert "
                f"--from {checkpoint} --to NEW_DIR --vocab spiece.model`")
  where = f"of --checkpoint {checkpoint} " if checkpoint else ""
  raise InferError(f"The vocabulary {where}has {vocabulary.vocab_size} ids but the model has "
                   f"vocab_size={config.vocab_size}, so it is not the model's vocabulary; "
                   f"{fix}.")


def _encode(vocabulary, texts: Sequence[str], eos_id: int, max_len: int, what: str):
  ids = [list(vocabulary.encode(t)) for t in texts]
  truncated = sum(len(x) + 1 > max_len for x in ids)
  if truncated:
    log.warning("%d of %d %s are longer than %d tokens and were truncated (keeping EOS).",
                truncated, len(ids), what, max_len)
  return [x[:max_len - 1] + [eos_id] for x in ids]


def run(config, params, vocabulary, rows: list[dict[str, Any]], mode: str, *,
        batch_size: int = 16, max_input_length: int = 512, max_decode_length: int = 64,
        max_target_length: int = 512, mesh=None, decode_method: str = "greedy",
        num_beams: int = 4, alpha: float = 0.6) -> list[dict[str, Any]]:
  """Predicts or scores `rows` in batches; returns the rows with `prediction` / `score` added.

  num_beams, alpha: beam search's (decode_method="beam"; `decoding.predict`)."""
  from flanjax import evaluation

  check_lengths(batch_size=batch_size, max_input_length=max_input_length,
                max_decode_length=max_decode_length, max_target_length=max_target_length)
  if mode not in MODES:
    raise InferError(f"--mode {mode!r}: use one of {MODES}.")
  if vocabulary is None:
    raise InferError("No vocabulary to encode the rows with: pass the model's vocabulary "
                     "(`load_vocabulary(checkpoint)` or `checkpoints.make_vocabulary(...)`).")
  if not rows:
    raise InferError("No rows to infer.")
  check_vocabulary(vocabulary, config)
  fns = evaluation.ModelFns(config, params, batch_size, mesh, decode_method, num_beams, alpha)
  enc = _encode(vocabulary, [r["inputs"] for r in rows], config.eos_token_id, max_input_length,
                "inputs")
  input_len = min(max_input_length, evaluation.bucket_length(max(len(x) for x in enc)))
  out = []
  if mode == "predict":
    tokens = evaluation._pad_cols(enc, input_len)
    predicted = fns.predict(tokens, max_decode_length)
    for row, pred in zip(rows, predicted):
      out.append({**row, "prediction": vocabulary.decode(list(map(int, pred)))})
  else:
    tgt = _encode(vocabulary, [r["targets"] for r in rows], config.eos_token_id,
                  max_target_length, "targets")
    target_len = min(max_target_length, evaluation.bucket_length(max(len(x) for x in tgt)))
    batch = evaluation.score_batch_from_targets(enc, tgt, input_len, target_len,
                                                config.decoder_start_token_id)
    scores = fns.score(batch)
    for row, s, t in zip(rows, scores.tolist(), tgt):
      # JSON has no NaN / Infinity: a non-finite score is written as null.
      score = float(s) if math.isfinite(s) else None
      out.append({**row, "score": score, "num_target_tokens": len(t)})
  return out


# flag -> its minimum: a length keeps at least one token before EOS.
MINIMUMS = {"batch_size": 1, "max_input_length": 2, "max_target_length": 2,
            "max_decode_length": 1, "max_examples": 1}


def check_lengths(**values: int | None) -> None:
  """InferError naming the flag of a batch size / length / count below its minimum."""
  for name, value in values.items():
    if value is None and name == "max_examples":
      continue
    minimum = MINIMUMS[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
      why = " (one token plus EOS)" if minimum == 2 else ""
      raise InferError(f"--{name}={value!r}: must be an integer >= {minimum}{why}.")


def write_rows(path: str, rows: Sequence[dict[str, Any]]) -> None:
  text = "".join(json.dumps(r, ensure_ascii=False, default=reports._json_default) + "\n"
                 for r in rows)
  reports.atomic_write(path, text)


def build_parser() -> argparse.ArgumentParser:
  from flanjax import evaluation
  from flanjax.cli import FlagParser
  p = FlagParser(prog="flanjax infer", description=(
      "Predict (generate) or score (log-likelihood of targets) JSONL rows with a checkpoint."))
  p.add_argument("--checkpoint", required=True, help="flanjax checkpoint directory")
  from flanjax.cli import int_at_least
  p.add_argument("--step", type=int_at_least(0), default=None,
                 help="checkpoint step (default: latest)")
  p.add_argument("--mode", required=True, choices=MODES)
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--input", help="JSONL file with 'inputs' (and 'targets' to score) per row")
  src.add_argument("--task", help="a registered task or mixture: use its examples")
  p.add_argument("--split", default=None, help="with --task (default: validation)")
  p.add_argument("--max_examples", type=int_at_least(1), default=None,
                 help="with --task: examples per task, >= 1 (default: all of them)")
  p.add_argument("--output", required=True, help="JSONL file to write (one row per input)")
  p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
  p.add_argument("--batch_size", type=int_at_least(1), default=16)
  p.add_argument("--max_input_length", type=int_at_least(2), default=512,
                 help="input tokens kept, EOS included (longer inputs are truncated; default 512)")
  p.add_argument("--max_target_length", type=int_at_least(2), default=512,
                 help="with --mode score: target tokens kept, EOS included (default 512)")
  p.add_argument("--max_decode_length", type=int_at_least(1), default=64,
                 help="with --mode predict: tokens to generate (default 64)")
  p.add_argument("--decode_method", default="greedy", choices=evaluation.DECODE_METHODS)
  evaluation.add_beam_flags(p)
  p.add_argument("--mesh_shape", default="-1,1")
  p.add_argument("--coordinator_address", default=None,
                 help="multi-host: host:port of process 0")
  p.add_argument("--num_processes", type=int_at_least(1), default=None,
                 help="multi-host: process count")
  p.add_argument("--process_id", type=int_at_least(0), default=None,
                 help="multi-host: this process")
  p.add_argument("--tfds_data_dir", default=None)
  from flanjax import catalog
  catalog.add_module_flag(p)
  return p


def main(argv: Sequence[str] | None = None) -> int:
  """`flanjax infer` (see the module docstring)."""
  import sys

  from flanjax import catalog, distributed, evaluation
  args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
  evaluation.check_beam_flags(args.num_beams, args.alpha, args.decode_method,
                              InferError)
  given = [f for f, v in (("--split", args.split), ("--max_examples", args.max_examples))
           if v is not None]
  if args.input and given:
    raise InferError(f"{' and '.join(given)} select a --task's examples; with --input every row "
                     "of the file is used (drop them, or cut the file).")
  args.split = args.split or "validation"
  if args.input and os.path.abspath(args.input) == os.path.abspath(args.output):
    raise InferError("--output must differ from --input (flanjax never overwrites your data).")
  if os.path.isdir(args.output):  # first: --overwrite cannot help there
    raise InferError(f"--output {args.output} is a directory; give a .jsonl file path.")
  if os.path.exists(args.output) and not args.overwrite:
    raise InferError(f"--output {args.output} already exists; pass --overwrite to replace it, "
                     "or choose another file.")
  # Before any data or model is loaded: the output's folder (made when missing) can be written.
  reports.check_writable_dir(os.path.dirname(os.path.abspath(args.output)), "--output folder")
  mesh_shape = evaluation.parse_mesh_shape(args.mesh_shape)
  # Before anything touches a JAX device.
  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  catalog.import_modules(args.module)
  if args.tfds_data_dir:
    import seqio
    seqio.set_tfds_data_dir_override(args.tfds_data_dir)
  vocabulary = load_vocabulary(args.checkpoint)  # before the rows and the params
  rows = (read_rows(args.input, args.mode) if args.input
          else task_rows(args.task, args.split, args.max_examples))
  config, params, _, mesh, _ = evaluation.load_checkpoint(args.checkpoint, args.step, mesh_shape)
  out = run(config, params, vocabulary, rows, args.mode, batch_size=args.batch_size,
            max_input_length=args.max_input_length, max_decode_length=args.max_decode_length,
            max_target_length=args.max_target_length, mesh=mesh,
            decode_method=args.decode_method,
            **{k: v for k, v in (("num_beams", args.num_beams), ("alpha", args.alpha))
               if v is not None})
  import jax
  if jax.process_index() == 0:  # every process holds all the results
    write_rows(args.output, out)
    print(f"Wrote {len(out)} rows to {args.output}")
  return 0
