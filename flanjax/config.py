"""Model configuration: the T5 hyper-parameters and the standard sizes.

Plain Python (no TensorFlow, no gin): gin files bind `T5Config` fields by name,
and a converted checkpoint stores `T5Config.to_dict()` next to its parameters.
`check_field_types` is the one type check of a config dataclass's fields (T5Config,
optimizers.OptimizerConfig and the trainer use it).
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import json
import math
import numbers
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

from flanjax.errors import FlanjaxError

_FEED_FORWARD = ("gated-gelu", "relu")
_ATTENTION_IMPLS = ("auto", "xla", "cudnn", "pallas", "cudnn_pallas")
_NORM_IMPLS = ("auto", "xla", "pallas", "pallas_backward")
_REMAT = ("none", "attention", "minimal", "full", "dots", "dots_with_no_batch_dims")
_DTYPES = ("bfloat16", "float16", "float32")
_INT_FIELDS = ("vocab_size", "d_model", "d_ff", "num_heads", "head_dim", "num_encoder_layers",
               "num_decoder_layers", "relative_attention_num_buckets",
               "relative_attention_max_distance")
_TOKEN_FIELDS = ("pad_token_id", "eos_token_id", "decoder_start_token_id")
# Fields checked against their choices, not by type (dtype may be given as a numpy dtype).
_CHOICES = {"feed_forward_proj": _FEED_FORWARD, "attention_impl": _ATTENTION_IMPLS,
            "norm_impl": _NORM_IMPLS, "remat_policy": _REMAT, "dtype": _DTYPES,
            "param_dtype": _DTYPES}


def is_int(x) -> bool:
  """An integer (Python or numpy), not a bool: what an integer config field may hold."""
  return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_real(x) -> bool:
  """A real number (Python or numpy), not a bool."""
  return isinstance(x, numbers.Real) and not isinstance(x, bool)


# What a config dataclass field of each annotated type accepts, and how the type reads in a
# message.
_FIELD_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (is_int, "an integer"),
    "float": (is_real, "a number"),
    "bool": (lambda v: isinstance(v, bool), "True or False"),
    "str": (lambda v: isinstance(v, str), "a string"),
}


def _field_type(annotation) -> tuple[Callable[[Any], bool], str]:
  """(accepts, what it must be) of a field annotated with int / float / bool / str, or one of
  them `| None`."""
  text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
  parts = [p.strip() for p in text.split("|")]
  none = "None" in parts
  try:
    checks = [_FIELD_TYPES[p] for p in parts if p != "None"]
  except KeyError:
    raise TypeError(f"check_field_types: no type check for the annotation {text!r}; add one "
                    "to config._FIELD_TYPES or skip the field.") from None
  want = " or ".join(w for _, w in checks) + (" or None" if none else "")
  return (lambda v: (none and v is None) or any(ok(v) for ok, _ in checks)), want


def _bound_by_gin(binding: str, value) -> bool:
  """Whether gin's config (if gin is loaded) binds `binding` ("Class.field") to `value`, i.e.
  the value came from a gin file or --gin flag."""
  gin = sys.modules.get("gin")
  if gin is None or not hasattr(gin, "query_parameter"):
    return False
  try:
    bound = gin.query_parameter(binding)
  except ValueError:  # not bound, or no such configurable
    return False
  return type(bound) is type(value) and bound == value


def unquote_hint(binding: str, value, ok: Callable[[Any], bool] | None) -> str:
  """'; write it without quotes: --gin.B=V' when `value` is a quoted literal that `ok` takes."""
  if isinstance(value, str) and ok is not None:
    try:
      literal = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
      return ""
    if not isinstance(literal, str) and ok(literal):
      return f"; write it without quotes: --gin.{binding}={literal!r}"
  return ""


def check_field_types(obj, values: Mapping[str, Any] | None = None,
                      skip: Collection[str] = ()) -> None:
  """Type-checks a config dataclass's fields against their annotations (int, float, bool, str,
  each maybe `| None`; integers and numbers may be numpy's, a bool must be a bool).

  Checks `obj`'s own field values, or, with `values` (e.g. gin bindings, `obj` then the class
  or an instance), the fields named there. Fields in `skip` are left to the caller. The first
  wrong value is a FlanjaxError: "Class.field=value must be <type>.", with
  " (gin binding Class.field)" when gin bound that value, and then how to write a quoted
  literal without its quotes.
  """
  cls = obj if isinstance(obj, type) else type(obj)
  for f in dataclasses.fields(cls):
    if f.name in skip or (values is not None and f.name not in values):
      continue
    value = values[f.name] if values is not None else getattr(obj, f.name)
    ok, want = _field_type(f.type)
    if not ok(value):
      binding = f"{cls.__name__}.{f.name}"
      where = (f" (gin binding {binding}){unquote_hint(binding, value, ok)}"
               if _bound_by_gin(binding, value) else "")
      raise FlanjaxError(f"{binding}={value!r} must be {want}{where}.")


@dataclasses.dataclass(frozen=True)
class T5Config:
  """Hyper-parameters of a T5 encoder-decoder (defaults: T5 v1.1 / Flan-T5 small)."""

  vocab_size: int = 32128
  d_model: int = 512
  d_ff: int = 1024
  num_heads: int = 6
  head_dim: int = 64
  num_encoder_layers: int = 8
  num_decoder_layers: int = 8
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  dropout_rate: float = 0.0
  layer_norm_epsilon: float = 1e-6
  # "gated-gelu": T5 v1.1 / Flan-T5. "relu": T5 v1.0.
  feed_forward_proj: str = "gated-gelu"
  # v1.0 ties the output layer to the embedding and rescales by d_model**-0.5.
  tie_word_embeddings: bool = False
  # Activation (compute) dtype and parameter (storage) dtype.
  dtype: str = "bfloat16"
  param_dtype: str = "float32"
  # False: T5X's default (`float32_logits=False`): the einsum attention path (CPU/TPU, or
  # attention_impl="xla") stores QK^T scores in `dtype`, softmax still in fp32. Changes the
  # numerics by bf16 rounding of the scores; ~12 % faster einsum steps (docs/performance.md).
  # The cuDNN and Pallas paths keep fp32 scores either way.
  float32_attention_logits: bool = True
  # Performance knobs: these change speed and memory, not the model's maths (every attention
  # path draws the same dropout mask). attention_impl: "auto"
  # (GPUs: the encoder's unpacked rows on "cudnn_pallas", else the Pallas kernel; elsewhere
  # einsum), "xla" (einsum), "cudnn", "pallas" (flanjax/flash_attention.py), "cudnn_pallas"
  # ("pallas", but the encoder's unpacked rows without dropout take cuDNN's forward with the
  # Pallas backward; see model.resolve_attention_impl).
  # norm_impl: "auto" (GPUs: "pallas_backward", elsewhere "xla"), "xla", "pallas_backward"
  # (XLA's forward norm, the fused backward kernel of flanjax/rms_norm.py), "pallas" (fused
  # forward and backward kernels). Off GPUs the kernels run in Pallas' interpreter (tests).
  # "pallas" is 1.3-2 % faster than "xla" (T5-large b64, T5-base b256) but keeps the normalised
  # activations that XLA would recompute under memory pressure: base b256 no longer fits JAX's
  # default 75 % pool. "pallas_backward" fits: 1.5 % faster at base b256 (docs/performance.md).
  scan_layers: bool = False
  remat_policy: str = "none"
  attention_impl: str = "auto"
  norm_impl: str = "auto"
  pad_token_id: int = 0
  eos_token_id: int = 1
  decoder_start_token_id: int = 0

  def __post_init__(self):
    check_field_types(self, skip=_CHOICES)  # types first, then the values' ranges
    for name in _INT_FIELDS:
      value = getattr(self, name)
      if value < 1:
        raise FlanjaxError(f"T5Config.{name}={value!r} must be a positive integer.")
      object.__setattr__(self, name, int(value))  # numpy ints -> int (JSON-serialisable)
    buckets = self.relative_attention_num_buckets
    if buckets < 4:
      raise FlanjaxError(f"T5Config.relative_attention_num_buckets={buckets} must be >= 4: the "
                         "encoder splits the buckets by direction, then into exact and "
                         "log-spaced halves (T5 uses 32).")
    if self.relative_attention_max_distance <= buckets // 2:
      raise FlanjaxError(f"T5Config.relative_attention_max_distance="
                         f"{self.relative_attention_max_distance} must be greater than "
                         f"relative_attention_num_buckets // 2 = {buckets // 2} (T5 uses 128 "
                         "with 32 buckets).")
    for name in _TOKEN_FIELDS:
      value = getattr(self, name)
      if not 0 <= value < self.vocab_size:
        raise FlanjaxError(f"T5Config.{name}={value!r} must be an integer token id in "
                           f"[0, vocab_size={self.vocab_size}).")
      object.__setattr__(self, name, int(value))
    if self.pad_token_id != 0:  # the masks, the loss weights and seqio's padding use id 0
      raise FlanjaxError(f"T5Config.pad_token_id={self.pad_token_id} is not supported: flanjax "
                         "pads with id 0 (T5's), as seqio does; use a vocabulary whose pad id "
                         "is 0.")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise FlanjaxError(f"T5Config.dropout_rate={self.dropout_rate!r}: must be in [0, 1) "
                         "(1 would drop every unit).")
    if not math.isfinite(self.layer_norm_epsilon) or self.layer_norm_epsilon <= 0:
      raise FlanjaxError(f"T5Config.layer_norm_epsilon={self.layer_norm_epsilon!r} must be a "
                         "positive number (T5 uses 1e-6).")
    object.__setattr__(self, "dropout_rate", float(self.dropout_rate))
    object.__setattr__(self, "layer_norm_epsilon", float(self.layer_norm_epsilon))
    for name, choices in _CHOICES.items():
      value = getattr(self, name)
      if not any(value == c for c in choices):
        raise FlanjaxError(f"T5Config.{name}={value!r}: use one of {choices}.")
      object.__setattr__(self, name, next(c for c in choices if value == c))  # np.dtype -> str

  @property
  def gated(self) -> bool:
    return self.feed_forward_proj == "gated-gelu"

  @property
  def layer_remat(self) -> bool:
    """Whether each layer runs under `jax.checkpoint` ("attention" only recomputes the einsum
    path's attention core)."""
    return self.remat_policy not in ("none", "attention")

  @property
  def joined_kv(self) -> int:
    return self.num_heads * self.head_dim

  def replace(self, **changes) -> "T5Config":
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "T5Config":
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
      hints = {k: difflib.get_close_matches(k, names, n=1) for k in unknown}
      raise FlanjaxError(f"Unknown T5Config fields {unknown}; closest: {hints}.")
    return cls(**d)


# Sizes of T5 v1.1 / Flan-T5 (head_dim 64, vocab 32128). "tiny" is for tests and the quickstart.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(d_model=64, d_ff=128, num_heads=4, head_dim=16,
                 num_encoder_layers=2, num_decoder_layers=2),
    "small": dict(d_model=512, d_ff=1024, num_heads=6, num_encoder_layers=8,
                  num_decoder_layers=8),
    "base": dict(d_model=768, d_ff=2048, num_heads=12, num_encoder_layers=12,
                 num_decoder_layers=12),
    "large": dict(d_model=1024, d_ff=2816, num_heads=16, num_encoder_layers=24,
                  num_decoder_layers=24),
    "xl": dict(d_model=2048, d_ff=5120, num_heads=32, num_encoder_layers=24,
               num_decoder_layers=24),
    "xxl": dict(d_model=4096, d_ff=10240, num_heads=64, num_encoder_layers=24,
                num_decoder_layers=24),
}


def get_config(size: str = "small", **overrides) -> T5Config:
  """Returns the T5 v1.1 config of a named size, with field overrides."""
  if not isinstance(size, str) or size not in SIZES:
    close = difflib.get_close_matches(size, SIZES, n=2) if isinstance(size, str) else []
    raise FlanjaxError(f"Unknown model size {size!r}; sizes: {sorted(SIZES)}"
                       + (f" (did you mean {close[0]!r}?)" if close else ""))
  names = [f.name for f in dataclasses.fields(T5Config)]
  unknown = sorted(set(overrides) - set(names))
  if unknown:
    hints = {k: difflib.get_close_matches(k, names, n=1) for k in unknown}
    raise FlanjaxError(f"get_config({size!r}): unknown T5Config fields {unknown}; "
                       f"closest: {hints}.")
  return T5Config(**{**SIZES[size], **overrides})
