"""Vocabularies: the T5 SentencePiece model (default) and the small offline one shipped here.

- `default_vocabulary()`: T5's SentencePiece model (32,000 pieces + 100 extra ids). Its path is
  `$FLANJAX_T5_VOCAB`, else the public GCS path T5X uses. Nothing can be downloaded here, so a
  missing file raises one message saying how to point flanjax at a local copy.
- `offline_vocabulary()`: a SentencePiece model trained once on the offline collection
  (`flanjax/assets/offline_spm.model`, T5 ids pad=0 eos=1 unk=2, byte fallback) plus 100 extra
  ids. Regenerate it with `python -m flanjax.vocab --train_offline` (see `train_offline_spm`).
"""
from __future__ import annotations

import os

from flanjax.errors import FlanjaxError

T5_GCS_VOCAB = "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model"
EXTRA_IDS = 100
OFFLINE_SPM_PIECES = 896 - EXTRA_IDS  # 896 ids in all (7 * 128)
ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
OFFLINE_SPM_PATH = os.path.join(ASSETS_DIR, "offline_spm.model")


def t5_vocab_path() -> str:
  return os.environ.get("FLANJAX_T5_VOCAB", T5_GCS_VOCAB)


class VocabularyError(FlanjaxError, FileNotFoundError):
  """A SentencePiece model file that is missing or cannot be read (the message says how to fix
  it); a FileNotFoundError too."""


def _unreadable(path: str) -> str | None:
  """Why the file at `path` cannot be read ("not found", or the error), None when it can."""
  import tensorflow as tf
  try:
    if not tf.io.gfile.exists(path):
      return "not found"
  except Exception as e:  # noqa: BLE001 (e.g. gs:// without network: FailedPreconditionError)
    first = " ".join(str(e).split())
    # libcurl's reason, without the preamble and the path again
    details = first.split("error details: ", 1)[-1].split(" when reading", 1)[0]
    return f"cannot be read ({type(e).__name__}: {details[:120]})"
  if tf.io.gfile.isdir(path):
    return "is a directory"
  return None


def _missing_message(path: str, reason: str = "not found") -> str:
  return (f"T5 SentencePiece model {path!r} {reason}. Copy T5's sentencepiece.model "
          f"(from {T5_GCS_VOCAB} or an HF t5 checkpoint's spiece.model) to a local file and set "
          "FLANJAX_T5_VOCAB=/path/to/spiece.model; the built-in catalog (flan2021_*) reads it "
          "there, and tasks you register take vocabulary=... as well. Tests and the quickstart "
          "use flanjax.vocab.offline_vocabulary() instead.")


def check_vocabulary(vocabulary, task: str | None = None) -> None:
  """Reads a SentencePiece vocabulary's model file now (once), so that a missing or unreadable
  file is one VocabularyError naming the path and the fix, not an error inside a tf.data map."""
  import seqio
  if not isinstance(vocabulary, seqio.SentencePieceVocabulary) or vocabulary._model:  # noqa: SLF001
    return
  path = vocabulary.sentencepiece_model_file
  t5 = (_T5Vocabulary is not None and isinstance(vocabulary, _T5Vocabulary)) or \
      path == t5_vocab_path()
  reason = _unreadable(path)
  if reason is None:
    try:
      vocabulary.load_model()
      return
    except FlanjaxError:
      raise
    except Exception as e:  # noqa: BLE001 (sentencepiece / protobuf parse errors)
      reason = f"is not a SentencePiece model ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
  if t5:
    raise VocabularyError(_missing_message(path, reason))
  who = f"Task {task!r}: its" if task else "The"
  raise VocabularyError(f"{who} vocabulary's SentencePiece model {path!r} {reason}; pass "
                        "vocabulary= a seqio.SentencePieceVocabulary of a readable local "
                        "spiece.model.")


_T5_VOCABS = {}
_T5Vocabulary = None  # the class, made on first use (seqio is imported lazily)


def _t5_vocabulary_class():
  global _T5Vocabulary
  if _T5Vocabulary is None:
    import seqio

    class T5Vocabulary(seqio.SentencePieceVocabulary):
      """SentencePieceVocabulary that explains a missing or unreadable model file on first
      use (a VocabularyError, not a tf error)."""

      def _model_context(self):
        if not self._model:
          reason = _unreadable(self.sentencepiece_model_file)
          if reason:
            raise VocabularyError(_missing_message(self.sentencepiece_model_file, reason))
        return super()._model_context()

    _T5Vocabulary = T5Vocabulary
  return _T5Vocabulary


def default_vocabulary(path: str | None = None, extra_ids: int = EXTRA_IDS, *,
                       check: bool = False):
  """The T5 SentencePiece vocabulary (path: arg, else $FLANJAX_T5_VOCAB, else T5's GCS path).

  The file is read when first used (so tasks can be registered without it; registered tasks
  check it before building their data pipeline); a missing or unreadable file then raises
  VocabularyError (a FlanjaxError and FileNotFoundError) saying how to point flanjax at a local
  copy. check=True checks now.
  """
  path = path or t5_vocab_path()
  if check:
    reason = _unreadable(path)
    if reason:
      raise VocabularyError(_missing_message(path, reason))
  key = (path, extra_ids)
  if key not in _T5_VOCABS:
    _T5_VOCABS[key] = _t5_vocabulary_class()(path, extra_ids=extra_ids)
  return _T5_VOCABS[key]


_OFFLINE_VOCAB = []


def offline_vocabulary():
  """The small SentencePiece vocabulary of the offline collection (896 ids incl. 100 extra ids).

  One shared object per process (the model is read once)."""
  import seqio
  if not os.path.exists(OFFLINE_SPM_PATH):
    raise FileNotFoundError(
        f"{OFFLINE_SPM_PATH} is missing: regenerate it with `python -m flanjax.vocab "
        "--train_offline` (or reinstall flanjax).")
  if not _OFFLINE_VOCAB:
    _OFFLINE_VOCAB.append(seqio.SentencePieceVocabulary(OFFLINE_SPM_PATH, extra_ids=EXTRA_IDS))
  return _OFFLINE_VOCAB[0]


def vocabulary_spec(vocabulary) -> dict:
  """JSON description of a vocabulary for checkpoints: {"type", "path", "extra_ids"}."""
  import seqio
  if isinstance(vocabulary, seqio.SentencePieceVocabulary):
    return {"type": "sentencepiece", "path": vocabulary.sentencepiece_model_file,
            "extra_ids": vocabulary.extra_ids}
  if isinstance(vocabulary, seqio.ByteVocabulary):
    return {"type": "byte", "extra_ids": vocabulary.extra_ids}
  raise TypeError(f"Unsupported vocabulary type {type(vocabulary).__name__}.")


def train_offline_spm(output_path: str = OFFLINE_SPM_PATH, num_sentences: int = 40_000) -> str:
  """Trains the offline SentencePiece model on rendered offline-collection text (deterministic).

  The corpus is every field and every rendered template of the offline collection's train
  splits (see flanjax.offline.corpus). Run once; the result is shipped in flanjax/assets/.
  """
  import sentencepiece as spm

  os.environ["_FLANJAX_TRAINING_OFFLINE_SPM"] = "1"
  from flanjax import offline
  lines = offline.corpus(max_lines=num_sentences)
  prefix = output_path[:-len(".model")] if output_path.endswith(".model") else output_path
  os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=OFFLINE_SPM_PIECES,
      model_type="unigram", character_coverage=1.0, byte_fallback=True,
      pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, input_sentence_size=0,
      shuffle_input_sentence=False, hard_vocab_limit=True, split_digits=True,
      normalization_rule_name="identity", remove_extra_whitespaces=False,
      allow_whitespace_only_pieces=True, user_defined_symbols=["\n"])
  vocab_file = prefix + ".vocab"
  if os.path.exists(vocab_file):
    os.remove(vocab_file)
  set_identity_charsmap(prefix + ".model")
  return prefix + ".model"


_PRIVATE_USE = 0xE000  # a codepoint that the identity charsmap "maps" (to itself)


def identity_charsmap() -> bytes:
  """A compiled SentencePiece charsmap that maps U+E000 to itself: identity normalization.

  A model with identity normalization stores an empty charsmap, and every load of it by
  tensorflow_text's SentencePiece op (seqio's tokenizer, once per task and split) logs
  "normalizer.cc(51) LOG(INFO) precompiled_charsmap is empty". A non-empty identity map
  normalizes exactly the same way and logs nothing. SentencePiece's builder refuses an identity
  rule, so this compiles U+E000 -> U+E001 and patches the target back to U+E000 (same length).
  """
  import tempfile

  import sentencepiece as spm
  from sentencepiece import sentencepiece_model_pb2 as pb
  with tempfile.TemporaryDirectory() as d:
    rule = os.path.join(d, "rule.tsv")
    with open(rule, "w") as f:
      f.write(f"{_PRIVATE_USE:04X}\t{_PRIVATE_USE + 1:04X}\n")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([f"identity charsmap {i}" for i in range(64)]),
        model_prefix=os.path.join(d, "m"), vocab_size=32, normalization_rule_tsv=rule,
        num_threads=1, minloglevel=2)
    with open(os.path.join(d, "m.model"), "rb") as f:
      blob = pb.ModelProto.FromString(f.read()).normalizer_spec.precompiled_charsmap
  trie_size = int.from_bytes(blob[:4], "little")
  src, dst = chr(_PRIVATE_USE).encode(), chr(_PRIVATE_USE + 1).encode()
  targets = blob[4 + trie_size:]
  if targets != dst + b"\0":
    raise RuntimeError(f"Unexpected SentencePiece charsmap layout ({targets!r}).")
  return blob[:4 + trie_size] + src + b"\0"


def set_identity_charsmap(model_path: str) -> None:
  """Rewrites an identity-normalization model with a non-empty identity charsmap (same
  tokenization, no "precompiled_charsmap is empty" log on every load)."""
  from sentencepiece import sentencepiece_model_pb2 as pb
  with open(model_path, "rb") as f:
    model = pb.ModelProto.FromString(f.read())
  if model.normalizer_spec.precompiled_charsmap:
    if model.normalizer_spec.name != "identity":
      raise ValueError(f"{model_path} normalizes ({model.normalizer_spec.name}): not rewritten.")
    return
  model.normalizer_spec.precompiled_charsmap = identity_charsmap()
  with open(model_path, "wb") as f:
    f.write(model.SerializeToString())


if __name__ == "__main__":
  import sys
  if "--train_offline" in sys.argv:
    print(train_offline_spm())
  elif "--identity_charsmap" in sys.argv:  # fix up an existing model in place
    set_identity_charsmap(sys.argv[-1])
    print(sys.argv[-1])
  else:
    print("usage: python -m flanjax.vocab --train_offline | --identity_charsmap MODEL")
