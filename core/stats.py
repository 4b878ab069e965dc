"""Uncertainty and significance for result rows: intervals, paired tests, corrections.

Why this lives in core: the leaderboard, every reporter and ``polymodal
compare`` must agree on how sure a number is, so there is one implementation.

* **Per-sample scores** travel with a row as ``extra["per_sample"]``, a small
  JSON object made by :func:`encode_per_sample`: 0/1 outcomes (correct,
  hit@K, attack succeeded) as packed bits, any other score as float32, both
  base64, plus a digest of the sample ids so two runs are only paired when
  they scored the same samples in the same order. 10,000 samples cost about
  1.7 KB as bits, 53 KB as floats.
* **Intervals** are seeded percentile bootstraps of the mean over samples
  (:func:`bootstrap_interval`); the same seed gives the same interval on every
  machine (numpy's ``PCG64`` stream is platform-independent).
* **Paired tests** (:func:`paired_test`) compare two runs on the same
  samples: the difference of means, its paired-bootstrap interval, and a
  two-sided sign-flip permutation p-value (exact up to 16 samples, seeded
  Monte Carlo above, with the ``(hits + 1) / (resamples + 1)`` estimator that
  never reports p = 0).
* **Corrections** for many comparisons: Holm (family-wise error) and
  Benjamini-Hochberg (false discovery rate), as adjusted p-values.
* **Seeds**: :func:`seed_summary` gives mean, sample standard deviation,
  count and a Student-t interval over per-seed values.

numpy is imported lazily so that importing this module (e.g. from the
leaderboard, which ``polymodal report`` loads) stays light.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from polymodal.errors import PolymodalError

if TYPE_CHECKING:
    import numpy as np

#: Default number of bootstrap resamples / Monte Carlo permutations.
DEFAULT_RESAMPLES = 1000
#: Default confidence level of every interval.
DEFAULT_LEVEL = 0.95
#: Up to this many samples the sign-flip test enumerates all 2**n sign patterns.
EXACT_PERMUTATION_MAX_N = 16
#: The key of per-sample scores in a row's ``extra``.
PER_SAMPLE_KEY = "per_sample"
#: How far (relative to ``max(1, |value|)``) the mean of a row's per-sample scores may be from its value.
#: Aggregates often come from torchmetrics in float32 (relative rounding about 6e-8 per operation), the
#: per-sample mean is an exact float64 ``fsum``, so honest agreement is well inside 1e-6; a disagreement
#: that matters -- a tie broken another way flips one sample -- moves the mean by 1/n, which is above
#: 1e-6 for any split of fewer than a million samples.
PER_SAMPLE_TOLERANCE = 1e-6


def per_sample_mean_matches(scores: Sequence[float], value: float) -> bool:
    """Whether ``scores`` (non-empty) average to ``value`` within :data:`PER_SAMPLE_TOLERANCE`."""
    if not scores:
        return False
    mean = math.fsum(float(s) for s in scores) / len(scores)
    return abs(mean - float(value)) <= PER_SAMPLE_TOLERANCE * max(1.0, abs(float(value)))


def consistent_per_sample(scores: Sequence[float] | None, value: float | None) -> list[float] | None:
    """``scores`` when they are the per-sample scores behind ``value`` (their mean), else None.

    The one check every axis makes before attaching per-sample scores to a row: a metric that breaks
    ties another way than the axis's own per-sample hits gives a value the scores do not average to,
    and then the row gets no interval rather than an interval of another number.
    """
    if scores is None or value is None or not math.isfinite(float(value)):
        return None
    scores = [float(s) for s in scores]
    return scores if per_sample_mean_matches(scores, value) else None


def ids_digest(ids: Iterable[Any]) -> str:
    """A short digest of sample ids, in order: equal digests mean the same samples, paired."""
    h = hashlib.sha256()
    for i in ids:
        h.update(repr(i).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def encode_per_sample(values: Sequence[float] | Any, ids: Iterable[Any] | None = None) -> dict[str, Any]:
    """Compact JSON form of per-sample scores (see the module docstring).

    ``ids`` identify the samples (defaults to positions 0..n-1); only their
    digest is kept. Non-finite scores are an error: they have no mean.
    """
    import numpy as np

    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise PolymodalError("per-sample scores must be finite numbers (got NaN or inf)")
    n = int(arr.size)
    digest = ids_digest(range(n) if ids is None else ids)
    if np.all((arr == 0) | (arr == 1)):
        data = np.packbits(arr.astype(np.uint8)).tobytes()
        return {"n": n, "format": "bits", "data": base64.b64encode(data).decode("ascii"), "ids": digest}
    data = arr.astype("<f4").tobytes()
    return {"n": n, "format": "f32", "data": base64.b64encode(data).decode("ascii"), "ids": digest}


def decode_per_sample(obj: Mapping[str, Any]) -> np.ndarray:
    """Per-sample scores back from :func:`encode_per_sample`'s object; a bad object is an error."""
    import numpy as np

    try:
        n = int(obj["n"])
        raw = base64.b64decode(obj["data"], validate=True)
        fmt = obj["format"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PolymodalError(f"per-sample scores: malformed record ({exc})") from None
    if fmt == "bits":
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
        if n < 0 or bits.size < n or bits.size - n >= 8:
            raise PolymodalError(f"per-sample scores: {n} samples do not fit {len(raw)} bytes of bits")
        return bits[:n].astype(np.float64)
    if fmt == "f32":
        if n < 0 or len(raw) != 4 * n:
            raise PolymodalError(f"per-sample scores: {n} samples need {4 * n} bytes, got {len(raw)}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float64)
    raise PolymodalError(f"per-sample scores: unknown format {fmt!r} (expected 'bits' or 'f32')")


def _rng(seed: int) -> np.random.Generator:
    import numpy as np

    return np.random.Generator(np.random.PCG64(seed))


#: Scores with at most this many distinct values are resampled through their value counts.
FEW_VALUES = 64


def _resample_means(samples: np.ndarray, resamples: int, seed: int, chunk: int = 1 << 22) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples, drawn in bounded-memory chunks.

    Most per-sample scores take few distinct values (0/1 outcomes; paired
    differences in {-1, 0, 1}). Drawing n indices with replacement then has
    the same distribution as drawing how often each distinct value is picked,
    a multinomial over the values' frequencies, which costs O(values) instead
    of O(n) per resample: 0.05 s instead of 2 s for 1,000 resamples of
    100,000 samples.
    """
    import numpy as np

    n = samples.size
    rng = _rng(seed)
    values, counts = np.unique(samples, return_counts=True)
    if values.size <= FEW_VALUES:
        picks = rng.multinomial(n, counts / n, size=resamples)
        return picks @ values / n
    out = np.empty(resamples)
    step = max(1, chunk // max(n, 1))
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = samples[idx].mean(axis=1)
    return out


@attrs.frozen
class Interval:
    """A confidence interval and how it was made."""

    low: float
    high: float
    level: float = DEFAULT_LEVEL
    #: ``"bootstrap"`` (over samples) or ``"t"`` (over seeds).
    method: str = "bootstrap"
    #: Samples (bootstrap) or seeds (t) behind the interval.
    n: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "level": self.level, "method": self.method, "n": self.n}


def bootstrap_interval(samples: Sequence[float] | Any, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                       level: float = DEFAULT_LEVEL) -> Interval | None:
    """Seeded percentile-bootstrap interval of the mean; None for fewer than 2 samples."""
    import numpy as np

    arr = np.asarray(samples, dtype=np.float64).reshape(-1)
    if arr.size < 2 or resamples < 1:
        return None
    means = _resample_means(arr, resamples, seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Interval(float(low), float(high), level, "bootstrap", int(arr.size))


@attrs.frozen
class PairedResult:
    """A paired comparison of run A against run B on the same samples."""

    difference: float
    interval: Interval | None
    p_value: float
    n: int
    #: ``"exact"`` (all sign patterns) or ``"monte-carlo"``.
    method: str
    #: The p-value after a multiple-comparison correction (set by the caller).
    p_adjusted: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"difference": self.difference, "interval": self.interval.to_json() if self.interval else None,
                "p_value": self.p_value, "p_adjusted": self.p_adjusted, "n": self.n, "method": self.method}


def sign_flip_p_value(differences: Sequence[float] | Any, *, resamples: int = DEFAULT_RESAMPLES,
                      seed: int = 0) -> tuple[float, str]:
    """Two-sided paired permutation p-value of the mean difference (sign flips).

    Under the null hypothesis each paired difference is as likely to have
    either sign. Up to :data:`EXACT_PERMUTATION_MAX_N` samples every pattern
    is enumerated; above, ``resamples`` seeded random patterns are drawn.
    """
    import numpy as np

    d = np.asarray(differences, dtype=np.float64).reshape(-1)
    n = d.size
    if n == 0:
        return 1.0, "exact"
    observed = abs(d.mean())
    # Guard against floating-point ties: a permuted statistic equal to the
    # observed one up to rounding counts as "at least as extreme".
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= EXACT_PERMUTATION_MAX_N:
        patterns = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        stats = np.abs(patterns @ d) / n
        return float(np.mean(stats >= observed - tol)), "exact"
    rng = _rng(seed)
    magnitudes, counts = np.unique(np.abs(d[d != 0]), return_counts=True)
    if magnitudes.size <= FEW_VALUES:
        # A random sign pattern only matters through how many of the k_j differences of
        # magnitude m_j come out positive, Binomial(k_j, 1/2): the sum is sum_j m_j (2 B_j - k_j).
        positives = rng.binomial(counts, 0.5, size=(resamples, counts.size))
        stats = np.abs((2 * positives - counts) @ magnitudes) / n
        return (int(np.count_nonzero(stats >= observed - tol)) + 1) / (resamples + 1), "monte-carlo"
    hits = 0
    step = max(1, (1 << 22) // n)
    for start in range(0, resamples, step):
        size = min(step, resamples - start)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) / n >= observed - tol))
    return (hits + 1) / (resamples + 1), "monte-carlo"


def paired_test(a: Sequence[float] | Any, b: Sequence[float] | Any, *, resamples: int = DEFAULT_RESAMPLES,
                seed: int = 0, level: float = DEFAULT_LEVEL) -> PairedResult:
    """Difference of means A - B on paired samples, its bootstrap interval and p-value."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise PolymodalError(f"paired test: the runs scored different numbers of samples ({a.size} vs {b.size})")
    d = a - b
    p, method = sign_flip_p_value(d, resamples=resamples, seed=seed)
    return PairedResult(float(d.mean()) if d.size else 0.0,
                        bootstrap_interval(d, resamples=resamples, seed=seed, level=level), p, int(d.size), method)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (controls the family-wise error rate)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, i in enumerate(order):
        rank = m - position
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg, "none": lambda ps: list(ps)}


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    """Adjusted p-values by ``method`` (``holm``, ``bh`` or ``none``)."""
    try:
        return CORRECTIONS[method](list(p_values))
    except KeyError:
        raise PolymodalError(f"unknown correction {method!r} (expected one of: {', '.join(CORRECTIONS)})") from None


@attrs.frozen
class SeedSummary:
    """A metric over seeds: mean, sample standard deviation, count, Student-t interval."""

    mean: float
    std: float
    n: int
    interval: Interval | None

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n,
                "interval": self.interval.to_json() if self.interval else None}


def seed_summary(values: Sequence[float], level: float = DEFAULT_LEVEL) -> SeedSummary:
    """Mean, spread and t-interval of one metric's per-seed values."""
    vals = [float(v) for v in values]
    n = len(vals)
    mean = math.fsum(vals) / n if n else math.nan
    if n < 2:
        return SeedSummary(mean, 0.0, n, None)
    from scipy import stats as _st

    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return SeedSummary(mean, std, n, Interval(mean - half, mean + half, level, "t", n))
