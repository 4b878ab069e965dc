"""polymodal.stats against scipy.stats on fixed inputs, and its encodings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from polymodal import stats
from polymodal.errors import PolymodalError


def test_per_sample_round_trip_bits_and_floats():
    rng = np.random.default_rng(0)
    bits = (rng.random(1001) < 0.3).astype(float)
    enc = stats.encode_per_sample(bits, ids=[f"s{i}" for i in range(1001)])
    assert enc["format"] == "bits" and enc["n"] == 1001 and len(enc["data"]) < 200
    np.testing.assert_array_equal(stats.decode_per_sample(enc), bits)
    scores = rng.random(37)
    enc = stats.encode_per_sample(scores)
    assert enc["format"] == "f32"
    np.testing.assert_allclose(stats.decode_per_sample(enc), scores.astype(np.float32))
    assert enc["ids"] == stats.ids_digest(range(37)) != stats.ids_digest(range(1, 38))


@pytest.mark.parametrize("bad", [{"n": 3}, {"n": 9, "format": "bits", "data": "AA=="},
                                 {"n": 2, "format": "f32", "data": "AAAA"}, {"n": 1, "format": "x", "data": ""}])
def test_malformed_per_sample_is_a_one_line_error(bad):
    with pytest.raises(PolymodalError, match="per-sample scores"):
        stats.decode_per_sample(bad)


def test_non_finite_per_sample_rejected():
    with pytest.raises(PolymodalError, match="finite"):
        stats.encode_per_sample([0.5, float("nan")])


def test_bootstrap_interval_is_seeded_and_agrees_with_scipy():
    rng = np.random.default_rng(1)
    x = rng.normal(0.7, 0.2, size=200)
    a = stats.bootstrap_interval(x, resamples=4000, seed=3)
    b = stats.bootstrap_interval(x, resamples=4000, seed=3)
    assert a == b and a.method == "bootstrap" and a.n == 200
    ref = st.bootstrap((x,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95,
                       rng=np.random.default_rng(3)).confidence_interval
    # Different random streams: the two percentile intervals agree to Monte Carlo error.
    assert abs(a.low - ref.low) < 0.01 and abs(a.high - ref.high) < 0.01
    # ... and both bracket the normal-theory interval of the mean.
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert abs(a.low - (x.mean() - half)) < 0.01 and abs(a.high - (x.mean() + half)) < 0.01
    assert stats.bootstrap_interval([1.0]) is None


def test_exact_sign_flip_equals_scipy_permutation_test():
    d = np.array([0.3, -0.1, 0.25, 0.4, 0.05, -0.2, 0.15, 0.33, 0.12, -0.05])
    p, method = stats.sign_flip_p_value(d)
    ref = st.permutation_test((d,), np.mean, permutation_type="samples", alternative="two-sided",
                              n_resamples=np.inf)
    assert method == "exact"
    assert p == pytest.approx(ref.pvalue, abs=1e-12)


def test_monte_carlo_sign_flip_close_to_scipy_and_seeded():
    rng = np.random.default_rng(5)
    a = (rng.random(300) < 0.62).astype(float)
    b = (rng.random(300) < 0.55).astype(float)
    r1 = stats.paired_test(a, b, resamples=20000, seed=0)
    r2 = stats.paired_test(a, b, resamples=20000, seed=0)
    assert r1 == r2 and r1.method == "monte-carlo" and r1.n == 300
    ref = st.permutation_test((a - b,), np.mean, permutation_type="samples", n_resamples=20000,
                              rng=np.random.default_rng(0))
    assert abs(r1.p_value - ref.pvalue) < 0.02
    assert r1.difference == pytest.approx(a.mean() - b.mean())
    assert r1.interval.low < r1.difference < r1.interval.high


def test_identical_runs_are_not_significant_and_clear_differences_are():
    a = np.ones(50)
    same = stats.paired_test(a, a, seed=0)
    assert same.difference == 0 and same.p_value == 1.0
    b = np.zeros(50)
    assert stats.paired_test(a, b, resamples=2000, seed=0).p_value == pytest.approx(1 / 2001)


def test_corrections():
    ps = [0.01, 0.04, 0.03, 0.2]
    assert stats.holm(ps) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    np.testing.assert_allclose(stats.benjamini_hochberg(ps), st.false_discovery_control(ps, method="bh"))
    assert stats.adjust(ps, "none") == ps
    with pytest.raises(PolymodalError, match="unknown correction"):
        stats.adjust(ps, "bonf")


def test_seed_summary_equals_scipy_t_interval():
    vals = [0.81, 0.79, 0.86, 0.84]
    s = stats.seed_summary(vals)
    low, high = st.t.interval(0.95, len(vals) - 1, loc=np.mean(vals), scale=st.sem(vals))
    assert s.n == 4 and s.std == pytest.approx(np.std(vals, ddof=1))
    assert (s.interval.low, s.interval.high) == (pytest.approx(low), pytest.approx(high))
    assert stats.seed_summary([0.5]).interval is None


def test_one_per_sample_consistency_check_with_one_tolerance() -> None:
    from polymodal.stats import PER_SAMPLE_TOLERANCE, consistent_per_sample

    hits = [1.0] * 3 + [0.0] * 4
    assert consistent_per_sample(hits, 3 / 7) == hits
    assert consistent_per_sample(hits, float(np.float32(3 / 7))) == hits  # float32 aggregate
    assert consistent_per_sample(hits, 4 / 7) is None  # a tie broken another way: no interval
    assert consistent_per_sample(hits, 3 / 7 + 10 * PER_SAMPLE_TOLERANCE) is None
    assert consistent_per_sample([], 0.0) is None and consistent_per_sample(hits, float("nan")) is None
