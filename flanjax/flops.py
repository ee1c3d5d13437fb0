"""Exact matmul FLOP count of a T5 training step, and model FLOPs utilisation (MFU).

Counting convention (issue 7): matmuls only, a multiply-add is 2 FLOPs, training = 3 x forward,
attention scores counted in full (no causal halving), padding tokens counted (the step computes
them). With d = d_model, hd = num_heads * head_dim, f = d_ff, Te/Td = input/target length:

  encoder, per layer per input token:   8*d*hd + 6*d*f + 4*Te*hd      (4*d*f for non-gated relu)
  decoder, per layer per target token: 12*d*hd + 6*d*f + 4*Td*hd + 4*Te*hd
           plus per layer per input token: 4*d*hd                      (cross-attention K/V)
  output layer, per target token:        2*d*vocab
"""
from __future__ import annotations

import re

from flanjax.config import T5Config

# Dense bf16 peak FLOP/s per chip (no sparsity), by the words of `jax.Device.device_kind` (a key
# matches when all its words are among the kind's; the key of most words wins: "H100 PCIe"
# over "H100", and "L4" never matches "L40S").
PEAK_FLOPS = {
    "H100": 989e12,  # SXM ("NVIDIA H100 80GB HBM3")
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H200": 989e12,
    "GH200": 989e12,
    "H800": 989e12,
    "H800 PCIe": 756e12,
    "A100": 312e12,
    "A800": 312e12,
    "L4": 121e12,
    "L40": 181e12,
    "L40S": 362e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v5": 459e12,
    "TPU v6 lite": 918e12,
    "TPU v6e": 918e12,
}


def _words(text: str) -> list[str]:
  return re.findall(r"[a-z0-9]+", text.lower())


def t5_forward_flops_per_sequence(config: T5Config, input_len: int, target_len: int) -> int:
  """Forward-pass matmul FLOPs for one sequence pair of lengths (input_len, target_len)."""
  d, hd, f, v = config.d_model, config.joined_kv, config.d_ff, config.vocab_size
  te, td = input_len, target_len
  mlp = (6 if config.gated else 4) * d * f
  enc_per_token = 8 * d * hd + mlp + 4 * te * hd
  dec_per_token = 12 * d * hd + mlp + 4 * td * hd + 4 * te * hd
  enc = config.num_encoder_layers * te * enc_per_token
  dec = config.num_decoder_layers * (td * dec_per_token + te * 4 * d * hd)
  out = td * 2 * d * v
  return int(enc + dec + out)


def t5_train_flops_per_sequence(config: T5Config, input_len: int, target_len: int) -> int:
  """Training-step FLOPs (3 x forward) for one sequence pair."""
  return 3 * t5_forward_flops_per_sequence(config, input_len, target_len)


def peak_flops_per_device(device_kind: str | None = None, override: float | None = None):
  """Peak FLOP/s of one device: `override` if given, else a known default, else None (CPU)."""
  if override:
    return float(override)
  if device_kind is None:
    import jax
    device_kind = jax.devices()[0].device_kind
  kind = set(_words(device_kind))
  found = [key for key in PEAK_FLOPS if set(_words(key)) <= kind]
  if not found:
    return None
  return PEAK_FLOPS[max(found, key=lambda key: len(_words(key)))]


def mfu(flops_per_step: float, step_seconds: float, num_devices: int,
        peak_per_device: float | None) -> float | None:
  """Model FLOPs utilisation in [0, 1], or None when the peak is unknown."""
  if not peak_per_device or step_seconds <= 0:
    return None
  return flops_per_step / step_seconds / (peak_per_device * num_devices)
