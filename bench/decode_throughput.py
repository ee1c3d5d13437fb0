"""Batched greedy decoding throughput: flanjax (`flanjax.decoding.predict`, KV cache) vs HF generate.

  PYTHONPATH=. python3 bench/decode_throughput.py --size base --batch 64 --input-len 512 \
      --decode-len 128 --systems flanjax,flanjax_bf16,hf_eager

Both systems decode the SAME randomly initialised model (flanjax params converted with
`flanjax.convert.save_hf`), whose output column for EOS is zeroed so that no row
stops early: every run generates exactly batch x decode_len tokens. Each system runs in its own
subprocess and prints one JSON line (system, size, batch, tokens_per_s, latency_s, compile_s,
agreement of the first 8 tokens with the flanjax fp32 run where available).
flanjax: float32 params with bf16 compute (`flanjax`), or params cast to bf16 (`flanjax_bf16`).
HF: `T5ForConditionalGeneration.generate(num_beams=1, do_sample=False, min_new_tokens=
max_new_tokens=decode_len)` with bf16 weights and its KV cache, eager PyTorch.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.append(REPO)  # appended: the repo's gin/ folder must not shadow gin-config

SYSTEMS = ("flanjax", "flanjax_bf16", "hf_eager")
RESULT_PREFIX = "BENCH_RESULT "


def parse_args(argv):
  p = argparse.ArgumentParser(prog="decode_throughput", description=__doc__.split("\n")[0])
  p.add_argument("--size", default="base")
  p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                 help="T5Config override (e.g. vocab_size=512 for tests)")
  p.add_argument("--systems", default="flanjax,flanjax_bf16,hf_eager")
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--input-len", type=int, default=512)
  p.add_argument("--decode-len", type=int, default=128)
  p.add_argument("--repeats", type=int, default=3, help="timed runs (median)")
  p.add_argument("--timeout", type=int, default=400)
  p.add_argument("--out", default=None)
  p.add_argument("--log-dir", default=None)
  p.add_argument("--child", default=None, help=argparse.SUPPRESS)
  p.add_argument("--tokens-file", default=None, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  for s in args.systems.split(","):
    if s not in SYSTEMS:
      p.error(f"--systems: unknown system {s!r}; use some of {SYSTEMS}")
  return args


def make_model(args):
  """(config, float32 numpy params, encoder tokens): deterministic, EOS column zeroed."""
  import jax
  import numpy as np

  from bench.train_throughput import parse_overrides
  from flanjax import model as model_lib
  from flanjax.config import get_config

  config = get_config(args.size, **parse_overrides(args.set))
  scanned = config.replace(scan_layers=True)  # fast init (one layer body), same distribution
  params = model_lib.unscan_params(model_lib.init_params(scanned, jax.random.PRNGKey(0)),
                                   config)
  params = jax.tree.map(lambda x: np.array(x, np.float32), params)  # writable copies
  params["decoder"]["logits_dense"]["kernel"][:, config.eos_token_id] = 0.0
  rng = np.random.default_rng(0)
  enc = rng.integers(2, config.vocab_size, size=(args.batch, args.input_len)).astype(np.int32)
  return config, params, enc


def run_flanjax(args, bf16: bool):
  import jax
  import jax.numpy as jnp
  import numpy as np

  from flanjax import decoding

  config, params, enc = make_model(args)
  dtype = jnp.bfloat16 if bf16 else jnp.float32
  params = jax.tree.map(lambda x: jnp.asarray(x, dtype), params)
  enc_dev = jnp.asarray(enc)
  t0 = time.perf_counter()
  out = decoding.predict(config, params, enc_dev, max_decode_length=args.decode_len)
  out = np.asarray(out)
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(args.repeats):
    t0 = time.perf_counter()
    out = decoding.predict(config, params, enc_dev, max_decode_length=args.decode_len)
    out = np.asarray(out)  # includes the device -> host copy, as a user would
    times.append(time.perf_counter() - t0)
  lat = float(np.median(times))
  return {"tokens": out, "latency_s": lat, "compile_s": compile_s,
          "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__}


def run_hf(args):
  import numpy as np
  import torch
  import transformers

  from flanjax.convert import save_hf

  config, params, enc = make_model(args)
  cuda = torch.cuda.is_available()
  dev = torch.device("cuda" if cuda else "cpu")
  import tempfile
  with tempfile.TemporaryDirectory() as hf_dir:  # the user's path: flanjax -> HF export
    save_hf(hf_dir, config, params)
    model = transformers.T5ForConditionalGeneration.from_pretrained(hf_dir)
  model = model.to(dev, torch.bfloat16 if cuda else torch.float32).eval()
  ids = torch.from_numpy(enc).long().to(dev)
  mask = torch.ones_like(ids)
  sync = torch.cuda.synchronize if cuda else (lambda: None)

  def gen():
    with torch.inference_mode():
      out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.decode_len,
                           min_new_tokens=args.decode_len, do_sample=False, num_beams=1)
    sync()
    return out[:, 1:].cpu().numpy()  # drop the decoder start token

  t0 = time.perf_counter()
  out = gen()
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(args.repeats):
    t0 = time.perf_counter()
    out = gen()
    times.append(time.perf_counter() - t0)
  return {"tokens": out, "latency_s": float(np.median(times)), "compile_s": compile_s,
          "device_kind": torch.cuda.get_device_name() if cuda else "cpu",
          "torch": torch.__version__, "transformers": transformers.__version__}


def child_main(args) -> int:
  import numpy as np
  try:
    res = run_hf(args) if args.child == "hf_eager" else run_flanjax(
        args, bf16=args.child == "flanjax_bf16")
    tokens = res.pop("tokens")
    if tokens.shape != (args.batch, args.decode_len):
      raise RuntimeError(f"{args.child} returned tokens of shape {tokens.shape}, expected "
                         f"{(args.batch, args.decode_len)}")
    if args.tokens_file:
      np.save(args.tokens_file, tokens)
    n = args.batch * args.decode_len
    row = {"system": args.child, "size": args.size, "batch": args.batch,
           "input_len": args.input_len, "decode_len": args.decode_len,
           "tokens_per_s": n / res["latency_s"], **res,
           "eos_in_output": int((tokens == 1).sum())}
  except Exception as e:
    import traceback
    traceback.print_exc()
    msg = f"{type(e).__name__}: {e}"
    row = {"system": args.child, "size": args.size, "batch": args.batch, "error": msg[:2000],
           "oom": any(s in msg for s in ("RESOURCE_EXHAUSTED", "out of memory"))}
  print(RESULT_PREFIX + json.dumps(row), flush=True)
  return 0


def main(argv=None) -> int:
  import numpy as np
  argv = list(sys.argv[1:] if argv is None else argv)
  args = parse_args(argv)
  if args.child:
    return child_main(args)
  import tempfile
  tmp = tempfile.mkdtemp(prefix="decode_bench_")
  rows = []
  for system in args.systems.split(","):
    tok_file = os.path.join(tmp, f"{system}.npy")
    env = dict(os.environ)
    if system == "hf_eager":
      env["JAX_PLATFORMS"] = "cpu"  # jax only builds the weights there; torch owns the GPU
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--child", system,
           "--tokens-file", tok_file]
    t0 = time.time()
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
      out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
      out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
      err = "timeout"
    if args.log_dir:
      os.makedirs(args.log_dir, exist_ok=True)
      with open(os.path.join(args.log_dir, f"decode_{system}_{args.size}.log"), "w") as f:
        f.write(out + "\n----- stderr -----\n" + err)
    row = next((json.loads(ln[len(RESULT_PREFIX):]) for ln in out.splitlines()
                if ln.startswith(RESULT_PREFIX)), None)
    if row is None:
      row = {"system": system, "size": args.size, "batch": args.batch,
             "error": f"no result: {err[-1500:]}"}
    row["wall_s"] = time.time() - t0
    rows.append((row, tok_file))
  ref = next((f for r, f in rows if r["system"] == "flanjax" and "error" not in r), None)
  for row, tok_file in rows:
    if ref and "error" not in row and os.path.exists(tok_file):
      a, b = np.load(ref)[:, :8], np.load(tok_file)[:, :8]
      row["agree_first8_vs_flanjax"] = float(np.mean(a == b))
    print(json.dumps(row), flush=True)
    if args.out:
      with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")
  print(f"{'system':13s} {'size':5s} {'batch':>5s} {'tok/s':>9s} {'latency_s':>9s} "
        f"{'compile':>7s} {'agree8':>6s}")
  for row, _ in rows:
    if "error" in row:
      print(f"{row['system']:13s} {row['size']:5s} {row['batch']:5d} ERROR: {row['error'][:80]}")
      continue
    print(f"{row['system']:13s} {row['size']:5s} {row['batch']:5d} {row['tokens_per_s']:9.0f} "
          f"{row['latency_s']:9.3f} {row['compile_s']:7.1f} "
          f"{row.get('agree_first8_vs_flanjax', float('nan')):6.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
