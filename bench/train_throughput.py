"""Training throughput of flanjax's real train step, with the Hugging Face transformers peer.

  PYTHONPATH=. python3 bench/train_throughput.py --sizes base,large,xl \
      --systems flanjax,hf_eager,hf_compile --steps 10 --out results.jsonl

Each (system, size) runs in its own subprocess (a fresh GPU allocator, its own XLA flags and a
time limit) and prints one JSON line: system, size, batch, tokens_per_s, mfu, step_s,
compile_s, peak_mem_gb, ... MFU uses the exact matmul FLOP count of `flanjax.flops` (issue 7:
multiply-add = 2, training = 3 x forward, attention scores in full, no causal halving) against
the chip's dense bf16 peak (989 TFLOP/s on H100/H200); `ceiling_frac` is the same against the
measured ~790 TFLOP/s matmul ceiling.

flanjax runs `flanjax.train.make_train_step` (the step `flanjax train` jits) with the model
config of `--size` plus `--set field=value` overrides, Adafactor with T5 defaults
(`OptimizerConfig()`), random tokens at full length (no padding, unpacked: cuDNN attention on
GPUs) or `--packed` synthetic batches (segment ids: flanjax's Pallas flash attention on GPUs). No TensorFlow.
The step is timed as `flanjax train` runs it between logged steps, without the grad/param norm
metrics (`--norms-every-step` times it with them). The peer is
`transformers.T5ForConditionalGeneration` built from the same config (fp32 master weights, bf16
autocast, transformers' Adafactor), eager and under `torch.compile`.
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
  # Appended, not prepended: the repo's gin/ folder (gin files) must not shadow gin-config.
  sys.path.append(REPO)
DEFAULT_BATCH = {"tiny": 8, "small": 64, "base": 64, "large": 32, "xl": 16, "xxl": 4}
SYSTEMS = ("flanjax", "hf_eager", "hf_compile")
MEASURED_CEILING = 790e12  # bf16 matmul FLOP/s measured on the H100 / H200 (issue 7)
RESULT_PREFIX = "BENCH_RESULT "


def parse_args(argv):
  p = argparse.ArgumentParser(prog="train_throughput", description=__doc__.split("\n")[0])
  p.add_argument("--sizes", default="base", help="comma list of sizes (tiny..xxl)")
  p.add_argument("--systems", default="flanjax", help=f"comma list of {SYSTEMS}")
  p.add_argument("--batch", default="", help="global batch: N for all sizes, or size=N,...")
  p.add_argument("--input-len", type=int, default=512)
  p.add_argument("--target-len", type=int, default=128)
  p.add_argument("--steps", type=int, default=10, help="timed steps")
  p.add_argument("--warmup", type=int, default=2, help="untimed steps after compilation")
  p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                 help="T5Config override for flanjax (e.g. remat_policy=full, scan_layers=true)")
  p.add_argument("--opt-set", action="append", default=[], metavar="FIELD=VALUE",
                 help="OptimizerConfig override (e.g. stacked_layers=false)")
  p.add_argument("--mesh", default="-1,1", help="flanjax (data, model) mesh shape")
  p.add_argument("--param-partitioning-dims", type=int, default=1)
  p.add_argument("--microbatches", type=int, default=1)
  p.add_argument("--norms-every-step", action="store_true",
                 help="time the step with the grad/param norm metrics, which `flanjax train` "
                      "computes only on the steps it logs or saves (default: without, as on "
                      "the other steps)")
  p.add_argument("--packed", action="store_true", help="packed synthetic batches (segment ids)")
  p.add_argument("--xla-flags", default=None,
                 help="XLA_FLAGS for the flanjax child (default: bench.xla_flags.DEFAULT)")
  p.add_argument("--patch", action="append", default=[], metavar="MODULE:FUNC",
                 help="call this function before building the model (prototype variants)")
  p.add_argument("--variant", default="", help="a label copied into the JSON line")
  p.add_argument("--hf-precision", default="autocast", choices=("autocast", "bf16"),
                 help="peer: fp32 weights + bf16 autocast, or bf16 weights")
  p.add_argument("--timeout", type=int, default=540, help="seconds per child run")
  p.add_argument("--out", default=None, help="append JSON lines to this file")
  p.add_argument("--log-dir", default=None, help="write each child's stderr here")
  p.add_argument("--profile-dir", default=None, help="flanjax: jax.profiler trace of 3 steps")
  p.add_argument("--dump-hlo", default=None, help="flanjax: write the optimized HLO text here")
  p.add_argument("--child", default=None, help=argparse.SUPPRESS)
  p.add_argument("--child-size", default=None, help=argparse.SUPPRESS)
  p.add_argument("--child-batch", type=int, default=None, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  for s in args.systems.split(","):
    if s not in SYSTEMS:
      p.error(f"--systems: unknown system {s!r}; use some of {SYSTEMS}")
  return args


def batch_for(size: str, spec: str) -> int:
  if not spec:
    return DEFAULT_BATCH[size]
  if "=" not in spec:
    return int(spec)
  table = dict(item.split("=") for item in spec.split(","))
  return int(table.get(size, DEFAULT_BATCH[size]))


def parse_overrides(items):
  """`field=value` strings -> dict with bool/int/float/str values."""
  out = {}
  for item in items:
    if "=" not in item:
      raise SystemExit(f"--set {item!r}: use FIELD=VALUE")
    k, v = item.split("=", 1)
    low = v.lower()
    if low in ("true", "false"):
      out[k] = low == "true"
    else:
      try:
        out[k] = int(v)
      except ValueError:
        try:
          out[k] = float(v)
        except ValueError:
          out[k] = v
  return out


def random_batch(rng, vocab, batch, input_len, target_len):
  """Full-length random tokens (no padding), EncDecFeatureConverter keys, int32 numpy."""
  import numpy as np
  enc = rng.integers(2, vocab, size=(batch, input_len)).astype(np.int32)
  tgt = rng.integers(2, vocab, size=(batch, target_len)).astype(np.int32)
  dec_in = np.concatenate([np.zeros((batch, 1), np.int32), tgt[:, :-1]], axis=1)
  return {"encoder_input_tokens": enc, "decoder_input_tokens": dec_in,
          "decoder_target_tokens": tgt, "decoder_loss_weights": np.ones_like(tgt)}


def _apply_patches(patches):
  import importlib
  for spec in patches:
    mod, _, fn = spec.partition(":")
    getattr(importlib.import_module(mod), fn or "apply")()


# --------------------------------------------------------------------------- flanjax


def build_state(config, mesh, rules, optimizer_cfg=None):
  """(state, state_shardings, tx, schedule) exactly as `flanjax.train.train` builds them."""
  import jax
  import jax.numpy as jnp
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P

  from flanjax import model as model_lib
  from flanjax import train as train_lib
  from flanjax.optimizers import OptimizerConfig, make_optimizer

  shapes = model_lib.param_shapes(config)
  tx, schedule = make_optimizer(optimizer_cfg or OptimizerConfig(), params=shapes)
  p_shard = train_lib.param_shardings(config, mesh, rules, shapes)
  o_shard = train_lib.opt_state_shardings(jax.eval_shape(tx.init, shapes), shapes, p_shard,
                                          mesh)
  state_shardings = train_lib.TrainState(step=NamedSharding(mesh, P()), params=p_shard,
                                         opt_state=o_shard)

  def init_state(rng):  # as flanjax.train.train's (which initialises through the scanned model)
    params = train_lib._init_unjitted(config, rng)
    return train_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                                opt_state=tx.init(params))

  with jax.set_mesh(mesh):
    state = jax.jit(init_state, out_shardings=state_shardings)(jax.random.PRNGKey(0))
  return state, state_shardings, tx, schedule


def run_flanjax(args, size, batch_size):
  import jax
  import numpy as np

  _apply_patches(args.patch)
  from flanjax import flops as flops_lib
  from flanjax import partitioning, synthetic
  from flanjax import train as train_lib
  from flanjax.config import get_config

  overrides = parse_overrides(args.set)
  config = get_config(size, **overrides)
  mesh_shape = tuple(int(x) for x in args.mesh.split(","))
  mesh = partitioning.make_mesh(mesh_shape)
  rules = partitioning.standard_logical_axis_rules(args.param_partitioning_dims)
  partitioning.check_batch_size(batch_size, mesh, args.microbatches)
  te, td = args.input_len, args.target_len

  from flanjax.optimizers import OptimizerConfig
  opt_overrides = parse_overrides(args.opt_set)
  t0 = time.perf_counter()
  state, state_shardings, tx, schedule = build_state(config, mesh, rules,
                                                     OptimizerConfig(**opt_overrides))
  jax.block_until_ready(state)
  init_s = time.perf_counter() - t0

  rng = np.random.default_rng(0)
  n_batches = 4  # rotate a few batches so nothing is served from a cache of one input

  def host_batch(i):
    if args.packed:
      return synthetic.make_batch(config, batch_size, te, td, seed=0, index=i, pack=True)
    return random_batch(rng, config.vocab_size, batch_size, te, td)
  host_batches = [host_batch(i) for i in range(n_batches)]
  # Real (non-padding) tokens a step, over the batches the steps rotate through: packed rows
  # hold ~75 % real tokens at 512/128, unpacked random rows all.
  nonpad_per_step = float(np.mean([np.sum(b["encoder_input_tokens"] != 0)
                                   + np.sum(b["decoder_loss_weights"] > 0)
                                   for b in host_batches]))
  batches = [partitioning.global_batch(b, mesh, batch_size) for b in host_batches]
  keys = sorted(batches[0])

  with jax.set_mesh(mesh):
    step = train_lib.make_train_step(config, tx, schedule, mesh=mesh, rules=rules,
                                     state_shardings=state_shardings, batch_keys=keys,
                                     num_microbatches=args.microbatches)
    t0 = time.perf_counter()
    norms = np.asarray(args.norms_every_step)
    lowered = step.lower(state, batches[0], norms)
    lower_s = time.perf_counter() - t0  # tracing + lowering (Pallas' Triton lowering included)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    if args.dump_hlo:
      os.makedirs(args.dump_hlo, exist_ok=True)
      name = f"{size}_{args.variant or 'default'}.hlo.txt"
      with open(os.path.join(args.dump_hlo, name), "w") as f:
        f.write(compiled.as_text())
    for i in range(args.warmup):
      state, metrics = compiled(state, batches[i % n_batches], norms)
    jax.block_until_ready((state, metrics) if args.warmup else state)
    losses = []
    t0 = time.perf_counter()
    for i in range(args.steps):
      state, metrics = compiled(state, batches[i % n_batches], norms)
      losses.append(metrics["loss"])
    jax.block_until_ready(state)
    total = time.perf_counter() - t0
    if args.profile_dir:
      jax.profiler.start_trace(args.profile_dir, create_perfetto_trace=True)
      for i in range(3):
        state, metrics = compiled(state, batches[i % n_batches], norms)
      jax.block_until_ready(state)
      jax.profiler.stop_trace()
  losses = [float(x) for x in jax.device_get(losses)]
  if not all(np.isfinite(losses)):
    raise RuntimeError(f"non-finite loss in the benchmark: {losses}")
  step_s = total / args.steps
  n_dev = jax.device_count()
  flops_step = batch_size * flops_lib.t5_train_flops_per_sequence(config, te, td)
  peak = flops_lib.peak_flops_per_device(jax.devices()[0].device_kind)
  mfu = flops_lib.mfu(flops_step, step_s, n_dev, peak)
  mem = [d.memory_stats() or {} for d in jax.local_devices()]
  peak_mem = max((m.get("peak_bytes_in_use", 0) for m in mem), default=0)
  from flanjax.model import resolve_attention_impl
  impl = resolve_attention_impl(config, packed=args.packed, dropout=config.dropout_rate > 0,
                                lengths=(te,))
  dec_impl = resolve_attention_impl(config, packed=args.packed,
                                    dropout=config.dropout_rate > 0, lengths=(td, te),
                                    stack="decoder")
  return {
      "system": "flanjax", "size": size, "batch": batch_size, "input_len": te, "target_len": td,
      "devices": n_dev, "mesh": list(mesh.devices.shape), "device_kind": jax.devices()[0].device_kind,
      "step_s": step_s, "tokens_per_s": batch_size * (te + td) / step_s,
      "tokens_per_s_per_device": batch_size * (te + td) / step_s / n_dev,
      "nonpad_tokens_per_s": nonpad_per_step / step_s,
      "mfu": mfu, "ceiling_frac": flops_step / step_s / (MEASURED_CEILING * n_dev),
      "tflops_per_s_per_device": flops_step / step_s / n_dev / 1e12,
      "flops_per_step": flops_step, "compile_s": compile_s, "lower_s": lower_s, "init_s": init_s,
      "peak_mem_gb": peak_mem / 2**30, "loss_first": losses[0], "loss_last": losses[-1],
      "attention": impl or "einsum", "decoder_attention": dec_impl or "einsum",
      "packed": args.packed,
      "config_overrides": overrides, "optimizer_overrides": opt_overrides, "microbatches": args.microbatches,
      "norms_every_step": args.norms_every_step,
      "xla_flags": os.environ.get("XLA_FLAGS", ""), "patches": args.patch,
      "mem_fraction": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "default (0.75)"),
      "jax": jax.__version__,
  }


# --------------------------------------------------------------------------- HF peer


def run_hf(args, size, batch_size, compile_model: bool):
  import numpy as np
  import torch
  import transformers
  from transformers.optimization import Adafactor

  from flanjax import flops as flops_lib
  from flanjax.config import get_config
  from flanjax.convert import config_to_hf

  # The same model (size and shape overrides; flanjax-only knobs such as scan_layers have no
  # HF counterpart and are ignored by config_to_hf).
  config = get_config(size, **parse_overrides(args.set))
  te, td = args.input_len, args.target_len
  hf_cfg = transformers.T5Config(**{k: v for k, v in config_to_hf(config).items()
                                    if k != "architectures"})
  cuda = torch.cuda.is_available()
  dev = torch.device("cuda" if cuda else "cpu")  # CPU only for the smoke test
  torch.manual_seed(0)
  model = transformers.T5ForConditionalGeneration(hf_cfg).to(dev)
  if args.hf_precision == "bf16":
    model = model.to(torch.bfloat16)
  model.train()
  # T5 fine-tuning defaults: fixed lr 1e-3, parameter scaling, update clipping 1.0.
  opt = Adafactor(model.parameters(), lr=1e-3, scale_parameter=True, relative_step=False,
                  warmup_init=False, clip_threshold=1.0)
  fwd = torch.compile(model) if compile_model else model
  rng = np.random.default_rng(0)
  batches = []
  for _ in range(4):
    b = random_batch(rng, config.vocab_size, batch_size, te, td)
    batches.append((torch.from_numpy(b["encoder_input_tokens"]).long().to(dev),
                    torch.from_numpy(b["decoder_input_tokens"]).long().to(dev),
                    torch.from_numpy(b["decoder_target_tokens"]).long().to(dev)))

  def step(i):
    enc, dec_in, tgt = batches[i % len(batches)]
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.hf_precision == "autocast"):
      out = fwd(input_ids=enc, decoder_input_ids=dec_in, labels=tgt)
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return out.loss.detach()

  sync = torch.cuda.synchronize if cuda else (lambda: None)
  if cuda:
    torch.cuda.reset_peak_memory_stats()
  t0 = time.perf_counter()
  step(0)
  sync()
  compile_s = time.perf_counter() - t0
  for i in range(args.warmup):
    step(i + 1)
  sync()
  losses = []
  t0 = time.perf_counter()
  for i in range(args.steps):
    losses.append(step(i))
  sync()
  step_s = (time.perf_counter() - t0) / args.steps
  losses = [float(x) for x in losses]
  if not all(np.isfinite(losses)):
    raise RuntimeError(f"non-finite loss in the HF peer: {losses}")
  flops_step = batch_size * flops_lib.t5_train_flops_per_sequence(config, te, td)
  kind = torch.cuda.get_device_name() if cuda else "cpu"
  peak = flops_lib.peak_flops_per_device(kind)
  return {
      "system": "hf_compile" if compile_model else "hf_eager", "size": size,
      "batch": batch_size, "input_len": te, "target_len": td, "devices": 1,
      "device_kind": kind,
      "step_s": step_s, "tokens_per_s": batch_size * (te + td) / step_s,
      "tokens_per_s_per_device": batch_size * (te + td) / step_s,
      "mfu": flops_lib.mfu(flops_step, step_s, 1, peak),
      "ceiling_frac": flops_step / step_s / MEASURED_CEILING,
      "tflops_per_s_per_device": flops_step / step_s / 1e12,
      "flops_per_step": flops_step, "compile_s": compile_s,
      "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0,
      "loss_first": losses[0], "loss_last": losses[-1], "precision": args.hf_precision,
      "torch": torch.__version__, "transformers": transformers.__version__,
  }


# --------------------------------------------------------------------------- driver


def child_main(args) -> int:
  size, batch = args.child_size, args.child_batch
  try:
    if args.child == "flanjax":
      row = run_flanjax(args, size, batch)
    else:
      row = run_hf(args, size, batch, compile_model=args.child == "hf_compile")
  except Exception as e:  # reported as a JSON line: an OOM is a result, not a crash
    msg = f"{type(e).__name__}: {e}"
    oom = any(s in msg for s in ("RESOURCE_EXHAUSTED", "OutOfMemory", "out of memory"))
    row = {"system": args.child, "size": size, "batch": batch, "error": msg[:2000],
           "oom": oom}
    import traceback
    traceback.print_exc()
  row["variant"] = args.variant
  print(RESULT_PREFIX + json.dumps(row), flush=True)
  return 0


def _child_env(args, system):
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if system == "flanjax":
    if args.xla_flags is not None:
      flags = args.xla_flags
    else:
      from bench.xla_flags import DEFAULT
      flags = DEFAULT
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
  return env


def run_child(args, argv, system, size, batch):
  cmd = [sys.executable, os.path.abspath(__file__), *argv, "--child", system,
         "--child-size", size, "--child-batch", str(batch)]
  t0 = time.time()
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_child_env(args, system),
                          timeout=args.timeout)
    out, err, rc = proc.stdout, proc.stderr, proc.returncode
  except subprocess.TimeoutExpired as e:
    out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
    rc = "timeout"
  if args.log_dir:
    os.makedirs(args.log_dir, exist_ok=True)
    name = f"{system}_{size}_{batch}_{args.variant or 'default'}.log"
    with open(os.path.join(args.log_dir, name), "w") as f:
      f.write(out + "\n----- stderr -----\n" + err)
  for line in out.splitlines():
    if line.startswith(RESULT_PREFIX):
      row = json.loads(line[len(RESULT_PREFIX):])
      break
  else:
    row = {"system": system, "size": size, "batch": batch, "variant": args.variant,
           "error": f"child exited {rc} without a result: {err[-1500:]}"}
  row["wall_s"] = time.time() - t0
  return row


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  args = parse_args(argv)
  if args.child:
    return child_main(args)
  rows = []
  for size in args.sizes.split(","):
    batch = batch_for(size, args.batch)
    for system in args.systems.split(","):
      row = run_child(args, argv, system, size, batch)
      rows.append(row)
      print(json.dumps(row), flush=True)
      if args.out:
        with open(args.out, "a") as f:
          f.write(json.dumps(row) + "\n")
  # A short table last.
  print(f"{'variant':24s} {'system':10s} {'size':5s} {'batch':>5s} {'tok/s':>9s} {'mfu':>6s} "
        f"{'step_ms':>8s} {'compile':>7s} {'mem_gb':>6s}")
  for r in rows:
    if "error" in r:
      print(f"{r.get('variant', ''):24s} {r['system']:10s} {r['size']:5s} {r['batch']:5d} "
            f"{'OOM' if r.get('oom') else 'ERROR'}: {r['error'][:80]}")
      continue
    print(f"{r.get('variant', ''):24s} {r['system']:10s} {r['size']:5s} {r['batch']:5d} "
          f"{r['tokens_per_s']:9.0f} {100 * (r['mfu'] or 0):5.1f}% {1e3 * r['step_s']:8.1f} "
          f"{r['compile_s']:7.1f} {r['peak_mem_gb']:6.1f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
