"""CPU smoke test of the GPU benchmarks (bench/): a tiny model, 1-2 steps, results are sane."""
import json
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.append(REPO)

from bench import decode_throughput, train_throughput  # noqa: E402

TINY = ["--sizes", "tiny", "--batch", "4", "--input-len", "16", "--target-len", "8",
        "--steps", "2", "--warmup", "1", "--set", "vocab_size=256"]


def test_train_bench_flanjax_and_hf_rows():
  args = train_throughput.parse_args(TINY)
  row = train_throughput.run_flanjax(args, "tiny", 4)
  assert row["system"] == "flanjax" and row["batch"] == 4
  assert row["tokens_per_s"] == pytest.approx(4 * 24 / row["step_s"])
  assert row["nonpad_tokens_per_s"] == pytest.approx(row["tokens_per_s"])  # random rows: full
  assert row["flops_per_step"] > 0 and row["compile_s"] > 0
  packed = train_throughput.run_flanjax(train_throughput.parse_args(TINY + ["--packed"]),
                                        "tiny", 4)
  # Packed rows hold padding: real tokens/s below tokens/s (which counts the padding, as MFU).
  assert 0.3 * packed["tokens_per_s"] < packed["nonpad_tokens_per_s"] < packed["tokens_per_s"]
  assert np.isfinite(row["loss_first"]) and np.isfinite(row["loss_last"])
  assert row["attention"] == "einsum"  # CPU: the reference path
  json.dumps(row)
  pytest.importorskip("torch")
  pytest.importorskip("transformers")
  hf = train_throughput.run_hf(args, "tiny", 4, compile_model=False)
  assert hf["system"] == "hf_eager" and hf["flops_per_step"] == row["flops_per_step"]
  assert np.isfinite(hf["loss_last"]) and hf["tokens_per_s"] > 0


def test_train_bench_parsing_and_errors():
  assert train_throughput.batch_for("large", "") == 32
  assert train_throughput.batch_for("large", "base=8,large=12") == 12
  assert train_throughput.batch_for("xl", "7") == 7
  assert train_throughput.parse_overrides(["scan_layers=true", "d_ff=64", "remat_policy=full"]) \
      == {"scan_layers": True, "d_ff": 64, "remat_policy": "full"}
  with pytest.raises(SystemExit):
    train_throughput.parse_args(["--systems", "flanjax,jax_reference"])


def test_decode_bench_same_tokens_as_hf():
  pytest.importorskip("torch")
  args = decode_throughput.parse_args(
      ["--size", "tiny", "--set", "vocab_size=256", "--set", "dtype=float32", "--batch", "2",
       "--input-len", "12", "--decode-len", "6", "--repeats", "1"])
  ours = decode_throughput.run_flanjax(args, bf16=False)
  theirs = decode_throughput.run_hf(args)
  assert ours["tokens"].shape == theirs["tokens"].shape == (2, 6)
  assert not (ours["tokens"] == 1).any()  # EOS column zeroed: full-length decoding
  np.testing.assert_array_equal(ours["tokens"], theirs["tokens"])


def test_gemm_signatures_of_a_compiled_step(tmp_path):
  """`bench/gemm_efficiency.py none HLO` finds every matmul of an optimized HLO once (inside
  fusions or not) with its FLOPs: here a forward and backward of two layers, one batched."""
  import io

  import jax
  import jax.numpy as jnp
  sys.path.insert(0, os.path.join(REPO, "bench"))  # the script imports its bench/ neighbours
  try:
    import gemm_efficiency
  finally:
    sys.path.remove(os.path.join(REPO, "bench"))

  def loss(w1, w2, x):  # x [4, 16, 32], w1 [32, 64], w2 [4, 64, 8] (batched over dim 0)
    h = jnp.tanh(x @ w1)  # [4, 16, 64]
    return jnp.sum(jnp.einsum("bsf,bfo->bso", h, w2) ** 2)

  args = (jnp.ones((32, 64)), jnp.ones((4, 64, 8)), jnp.ones((4, 16, 32)))
  text = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(*args).compile().as_text()
  path = tmp_path / "step.hlo.txt"
  path.write_text(text)
  rows = gemm_efficiency.static_signatures(str(path), out=io.StringIO())
  total = sum(r["flops"] * r["calls"] for r in rows)
  # forward 2 GEMMs, backward: dh and dw2 of the second, dw1 of the first (dx is not needed)
  fwd = 2 * 64 * 32 * 64 + 2 * 64 * 64 * 8
  expected = fwd + 2 * (2 * 64 * 64 * 8) + 2 * 64 * 32 * 64
  assert total == expected, (total, expected, [(r["lhs"], r["rhs"], r["calls"]) for r in rows])
  assert all(r["dtypes"][0] == "f32" for r in rows)
