"""Decoding: greedy == HF generate, sampling, beam search vs brute force, scoring."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flanjax import decoding
from flanjax import model as M
from flanjax.config import get_config
from flanjax.convert import params_from_hf_state

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = 53


def _hf_and_flanjax(v11=True, seed=0, vocab=VOCAB, eos_boost=1.0, **overrides):
  torch.manual_seed(seed)
  hcfg = transformers.T5Config(
      vocab_size=vocab, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2,
      num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=16,
      dropout_rate=0.0, feed_forward_proj="gated-gelu" if v11 else "relu",
      tie_word_embeddings=not v11, decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
  m = transformers.T5ForConditionalGeneration(hcfg).eval()
  with torch.no_grad():
    for p in m.parameters():
      p.add_(0.3 * torch.randn_like(p))
    if v11:
      m.lm_head.weight = torch.nn.Parameter(torch.randn(vocab, 32))
    # Make EOS likely enough that some rows stop early.
    (m.lm_head.weight if v11 else m.shared.weight)[1] *= eos_boost
  config = get_config("tiny", vocab_size=vocab, d_model=32, head_dim=8, d_ff=48,
                      num_encoder_layers=2, num_decoder_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, relative_attention_max_distance=16,
                      feed_forward_proj="gated-gelu" if v11 else "relu",
                      tie_word_embeddings=not v11, dtype="float32", **overrides)
  state = {k: v.detach().numpy() for k, v in m.state_dict().items()}
  return m, config, params_from_hf_state(config, state)


def _enc(rng, batch=4, length=9, vocab=VOCAB):
  enc = rng.integers(2, vocab, size=(batch, length)).astype(np.int32)
  enc[1, 5:] = 0
  enc[-1, 7:] = 0
  return enc


def _hf_generate(m, enc, max_len, **kw):
  with torch.no_grad():
    out = m.generate(input_ids=torch.tensor(enc, dtype=torch.long),
                     attention_mask=torch.tensor(enc > 0, dtype=torch.long),
                     max_new_tokens=max_len, min_new_tokens=0, **kw).numpy()[:, 1:]
  res = np.zeros((enc.shape[0], max_len), np.int32)
  res[:, :out.shape[1]] = out
  return res


@pytest.mark.parametrize("v11,eos_boost", [(True, 1.5), (False, 6.0)])
def test_greedy_matches_hf_generate(v11, eos_boost):
  m, config, params = _hf_and_flanjax(v11, eos_boost=eos_boost)
  enc = _enc(np.random.default_rng(0))
  got = np.asarray(decoding.predict(config, params, enc, max_decode_length=12))
  ref = _hf_generate(m, enc, 12, do_sample=False, num_beams=1)
  np.testing.assert_array_equal(got, ref)
  # The test is only meaningful if some rows stop at EOS and some run to the end.
  assert (got == 1).any() and (got[:, -1] != 0).any(), got


def _teacher_forced_greedy(config, params, enc, max_len):
  """Greedy decoding by re-running the full decoder each step (no cache)."""
  apply = jax.jit(M.T5(config).apply)
  dec = np.zeros((enc.shape[0], max_len + 1), np.int32)
  done = np.zeros(enc.shape[0], bool)
  for i in range(max_len):
    logits = apply({"params": params}, enc, dec)  # causal: later positions do not matter
    nxt = np.where(done, 0, np.argmax(np.asarray(logits[:, i]), -1))
    dec[:, i + 1] = nxt
    done |= nxt == config.eos_token_id
  return dec[:, 1:]


def test_kv_cache_equals_full_recompute_scanned_and_bf16():
  _, config, params = _hf_and_flanjax(True, seed=1)
  enc = _enc(np.random.default_rng(1), batch=3)
  ref = _teacher_forced_greedy(config, params, enc, 8)
  scfg = config.replace(scan_layers=True)
  got = decoding.predict(scfg, M.scan_params(params, scfg), enc, max_decode_length=8)
  np.testing.assert_array_equal(np.asarray(got), ref)
  out = decoding.predict(config.replace(dtype="bfloat16"), params, enc, max_decode_length=8)
  assert out.shape == (3, 8) and out.dtype == jnp.int32


def test_sampling_deterministic_topk1_is_greedy_and_varies():
  _, config, params = _hf_and_flanjax(True, seed=2)
  enc = _enc(np.random.default_rng(2))
  greedy = decoding.predict(config, params, enc, max_decode_length=10)
  k1 = decoding.predict(config, params, enc, max_decode_length=10, method="sample", top_k=1,
                        rng=jax.random.PRNGKey(5))
  np.testing.assert_array_equal(k1, greedy)
  tiny_p = decoding.predict(config, params, enc, max_decode_length=10, method="sample",
                            top_p=1e-6, rng=jax.random.PRNGKey(5))
  np.testing.assert_array_equal(tiny_p, greedy)
  kw = dict(max_decode_length=10, method="sample", temperature=2.0, top_k=20, top_p=0.95)
  a = decoding.predict(config, params, enc, rng=jax.random.PRNGKey(7), **kw)
  b = decoding.predict(config, params, enc, rng=jax.random.PRNGKey(7), **kw)
  c = decoding.predict(config, params, enc, rng=jax.random.PRNGKey(8), **kw)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  # After EOS only zeros.
  for row in np.asarray(c):
    hits = np.flatnonzero(row == 1)
    if hits.size:
      assert (row[hits[0] + 1:] == 0).all()


def test_filter_logits():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  assert np.isclose(jax.nn.softmax(decoding.filter_logits(logits, top_k=2))[0, :2].sum(), 1.0)
  kept = np.asarray(decoding.filter_logits(logits, top_p=0.7)[0] > -1e8)
  np.testing.assert_array_equal(kept, [True, True, False, False])
  kept = np.asarray(decoding.filter_logits(logits, top_p=0.81)[0] > -1e8)
  np.testing.assert_array_equal(kept, [True, True, True, False])


def _brute_force_best(config, params, enc_row, max_len, alpha):
  """Exhaustive search over all sequences up to max_len (EOS-terminated or truncated)."""
  model = M.T5(config)
  v, eos = config.vocab_size, config.eos_token_id
  cands = []
  for n in range(1, max_len + 1):
    for body in itertools.product([t for t in range(v) if t != eos], repeat=n - 1):
      cands.append(list(body) + [eos])
      if n == max_len:
        for last in range(v):
          if last != eos:
            cands.append(list(body) + [last])
  tgt = np.zeros((len(cands), max_len), np.int32)
  for i, c in enumerate(cands):
    tgt[i, :len(c)] = c
  w = (np.arange(max_len)[None] < np.array([len(c) for c in cands])[:, None]).astype(np.float32)
  dec = np.concatenate([np.zeros((len(cands), 1), np.int32), tgt[:, :-1]], axis=1)
  logits = model.apply({"params": params}, np.repeat(enc_row[None], len(cands), 0), dec)
  logp = np.asarray(jax.nn.log_softmax(logits, -1))
  lp = (np.take_along_axis(logp, tgt[..., None], -1)[..., 0] * w).sum(-1)
  lengths = w.sum(-1)
  scores = lp / ((5.0 + lengths) / 6.0) ** alpha  # T5X's length penalty, written out
  return tgt[int(np.argmax(scores))]


@pytest.mark.parametrize("alpha", [0.6, pytest.param(0.0, marks=pytest.mark.slow),
                                   pytest.param(2.0, marks=pytest.mark.slow)])
def test_beam_search_with_enough_beams_is_exact(alpha):
  v = 5
  # Seed 5: a model whose best answers are not all a bare EOS and change with alpha (row 1:
  # [EOS] at alpha 0 and 0.6, three tokens at 2.0), so the length penalty decides something.
  _, config, params = _hf_and_flanjax(True, seed=5, vocab=v)
  enc = _enc(np.random.default_rng(5), batch=3, length=6, vocab=v)
  max_len = 3
  # num_beams >= (v-1)**(max_len-1) keeps every open prefix: beam search becomes exhaustive.
  got = np.asarray(decoding.predict(config, params, enc, max_decode_length=max_len,
                                    method="beam", num_beams=16, alpha=alpha))
  want = np.stack([_brute_force_best(config, params, enc[b], max_len, alpha)
                   for b in range(enc.shape[0])])
  np.testing.assert_array_equal(got, want)
  assert (want[:, 0] != config.eos_token_id).any()  # not every answer a bare EOS


def test_beam_search_matches_hf_without_length_penalty():
  """HF's length penalty is len**lp (not T5X's); with alpha=0 / length_penalty=0 they agree."""
  m, config, params = _hf_and_flanjax(True, seed=4)
  enc = _enc(np.random.default_rng(4))
  got = np.asarray(decoding.predict(config, params, enc, max_decode_length=10, method="beam",
                                    num_beams=4, alpha=0.0))
  ref = _hf_generate(m, enc, 10, do_sample=False, num_beams=4, length_penalty=0.0,
                     early_stopping=True)
  ref = np.where(np.cumsum(ref == 1, axis=1) - (ref == 1) > 0, 0, ref)  # HF pads with EOS
  assert (got == 1).any()
  np.testing.assert_array_equal(got, ref)


def test_score_matches_hf_loss():
  m, config, params = _hf_and_flanjax(False, seed=5)
  rng = np.random.default_rng(5)
  enc = _enc(rng, batch=3)
  tgt = rng.integers(2, VOCAB, size=(3, 6)).astype(np.int32)
  tgt[0, 4:] = 0
  w = (tgt > 0).astype(np.float32)
  dec = np.concatenate([np.zeros((3, 1), np.int32), tgt[:, :-1]], axis=1)
  got = decoding.score(config, params, dict(encoder_input_tokens=enc, decoder_input_tokens=dec,
                                            decoder_target_tokens=tgt, decoder_loss_weights=w))
  with torch.no_grad():
    logits = m(input_ids=torch.tensor(enc, dtype=torch.long),
               attention_mask=torch.tensor(enc > 0, dtype=torch.long),
               decoder_input_ids=torch.tensor(dec, dtype=torch.long)).logits
    lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(tgt, dtype=torch.long)[..., None])
    ref = (lp[..., 0].numpy() * w).sum(-1)
  assert got.dtype == jnp.float32 and got.shape == (3,)
  np.testing.assert_allclose(got, ref, atol=1e-4)
  with pytest.raises(ValueError, match="decoder_loss_weights"):
    decoding.score(config, params, dict(encoder_input_tokens=enc, decoder_input_tokens=dec,
                                        decoder_target_tokens=tgt))


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_padding_rows_do_not_keep_the_loop_running(method):
  """A last partial batch is filled with all-0 rows (evaluation.ModelFns): they are done from the
  start, so the batch stops when its real rows do, with the same outputs as unpadded."""
  _, config, params = _hf_and_flanjax(True, seed=0, eos_boost=1.5)
  real = _enc(np.random.default_rng(0))[:1]
  padded = np.concatenate([real, np.zeros((3, real.shape[1]), np.int32)])
  kw = dict(max_decode_length=24, method=method, num_beams=3)
  want, want_steps = decoding._predict_with_steps(config, params, real, **kw)
  got, steps = decoding._predict_with_steps(config, params, padded, **kw)
  assert int(want_steps) < 24  # the real row stops early ...
  assert int(steps) == int(want_steps)  # ... and so does the padded batch
  np.testing.assert_array_equal(np.asarray(got)[:1], want)
  np.testing.assert_array_equal(np.asarray(got)[1:], 0)


def test_beam_settings_are_checked():
  _, config, params = _hf_and_flanjax(True, seed=0)
  enc = _enc(np.random.default_rng(0))
  from flanjax.errors import FlanjaxError
  with pytest.raises(FlanjaxError, match=r"^alpha \(the beam length penalty\) must be a number "
                                         r">= 0, got -0\.5 \(0: no length penalty"):
    decoding.predict(config, params, enc, max_decode_length=4, method="beam", alpha=-0.5)
  with pytest.raises(FlanjaxError, match=r"^alpha .* got nan"):
    decoding.predict(config, params, enc, max_decode_length=4, method="beam", alpha=float("nan"))
  with pytest.raises(FlanjaxError, match=r"^num_beams must be an integer >= 1, got 0\.$"):
    decoding.predict(config, params, enc, max_decode_length=4, method="beam", num_beams=0)
