"""Mixing rates: capped examples-proportional, temperature, equal, nested; errors."""
import pytest
import seqio

from flanjax import mixing, registration
from flanjax.templates import Template

SIZES = {"mixtest_a": 10_000, "mixtest_b": 1_000, "mixtest_c": 100}


@pytest.fixture(scope="module", autouse=True)
def tasks():
  from flanjax import vocab
  for name, n in SIZES.items():
    if name not in seqio.TaskRegistry.names():
      registration.register_tfds_task(
          name, "not_a_real_dataset_xyz:1.0.0", cluster=name[-1], metric="accuracy",
          templates=[Template("{x}", "{y}")], preprocessor=None, splits={"train": "train"},
          num_train_examples=n, vocabulary=vocab.offline_vocabulary())


def test_examples_proportional_with_cap():
  mixing.register_mixture("mixtest_cap", list(SIZES), rate=mixing.examples_rate(3000))
  r = mixing.effective_rates("mixtest_cap")
  assert r["mixtest_a"] == pytest.approx(3000 / 4100)
  assert r["mixtest_b"] == pytest.approx(1000 / 4100)
  assert r["mixtest_c"] == pytest.approx(100 / 4100)
  # Same probabilities as seqio's own mixing.
  mix = seqio.get_mixture_or_task("mixtest_cap")
  for t in mix.tasks:
    assert mix.get_rate(t) / mix.total_rate == pytest.approx(r[t.name])


def test_temperature_and_equal():
  mixing.register_mixture("mixtest_t", list(SIZES), rate=mixing.temperature_rate(2.0))
  r = mixing.effective_rates("mixtest_t")
  z = 100 + 1000 ** 0.5 + 10
  assert r["mixtest_a"] == pytest.approx(100 / z) and r["mixtest_c"] == pytest.approx(10 / z)
  mixing.register_mixture("mixtest_eq", list(SIZES), rate=mixing.equal_rate())
  assert list(mixing.effective_rates("mixtest_eq").values()) == [pytest.approx(1 / 3)] * 3
  with pytest.raises(ValueError, match="temperature"):
    mixing.temperature_rate(0)
  for cap in (0, -5, 2.5, True):  # 0 meant "no cap", a negative one negative rates
    with pytest.raises(ValueError, match=rf"cap={cap!r} must be an integer >= 1 \(or None"):
      mixing.examples_rate(cap)
  with pytest.raises(ValueError, match=r"cap=0 must be"):
    mixing.temperature_rate(2.0, cap=0)


def test_nested_sub_mixtures():
  mixing.register_mixture("mixtest_ab", ["mixtest_a", "mixtest_b"], rate=mixing.equal_rate())
  mixing.register_mixture("mixtest_c_only", ["mixtest_c"])
  mixing.register_mixture("mixtest_nested", sub_mixtures=[("mixtest_ab", 3.0),
                                                          ("mixtest_c_only", 1.0)])
  r = mixing.effective_rates("mixtest_nested")
  assert r == {"mixtest_a": pytest.approx(0.375), "mixtest_b": pytest.approx(0.375),
               "mixtest_c": pytest.approx(0.25)}
  mix = seqio.get_mixture_or_task("mixtest_nested")
  for t in mix.tasks:
    assert mix.get_rate(t) / mix.total_rate == pytest.approx(r[t.name])


def test_errors_name_the_task():
  with pytest.raises(mixing.MixtureError, match="unknown task or mixture 'mixtest_d'.*mixtest_"):
    mixing.register_mixture("mixtest_bad", ["mixtest_a", "mixtest_d"])
  if "mixtest_zero" not in seqio.TaskRegistry.names():
    from flanjax import vocab
    registration.register_tfds_task(
        "mixtest_zero", "not_a_real_dataset_xyz:1.0.0", cluster="z", metric="accuracy",
        templates=[Template("{x}", "{y}")], preprocessor=None, splits={"train": "train"},
        num_train_examples=0, vocabulary=vocab.offline_vocabulary())
  with pytest.raises(mixing.MixtureError, match="'mixtest_zero' has no training examples"):
    mixing.register_mixture("mixtest_z", ["mixtest_a", "mixtest_zero"], check_sizes=True)
  mixing.register_mixture("mixtest_z2", ["mixtest_a", "mixtest_zero"])
  with pytest.raises(mixing.MixtureError, match="'mixtest_zero'.*zero-size"):
    mixing.effective_rates("mixtest_z2")
  with pytest.raises(mixing.MixtureError, match="Unknown mixture 'mixtest_capp'"):
    mixing.effective_rates("mixtest_capp")
