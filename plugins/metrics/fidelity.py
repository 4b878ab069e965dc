"""Inception Score, FID and KID as torch-fidelity computes them, from features.

The formulas and their randomness follow torch-fidelity so that numbers agree:

* IS: softmax of the logits in float64, rows shuffled with
  ``numpy.random.RandomState(seed).permutation`` (seed 2020), ``splits``
  contiguous chunks ``[i*N//splits, (i+1)*N//splits)``, per chunk
  ``exp(mean KL(p || mean p))``; mean and population std over chunks.
* FID: float64 means and (N-1)-normalised covariances;
  ``|mu1-mu2|^2 + tr S1 + tr S2 - 2 * sum(sqrt(eigvals(S1 S2))).real``.
* KID: ``subsets`` draws of ``subset_size`` rows without replacement from each
  set (one ``RandomState(seed)``, real then generated per subset), polynomial
  kernel ``(x.y / D + 1) ** 3``, unbiased MMD^2; mean and population std.

The Metric classes store features (or logits) as ``cat`` states, so batches
and processes combine exactly. A ``feature_extractor`` (any callable mapping an
image batch to ``[B, D]``, e.g. from :func:`build_feature_extractor`) lets
``update`` take images instead of features.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


@attrs.frozen
class MeanStd:
    """A score over random splits or subsets: mean and population std."""

    mean: float
    std: float


def _as_2d_float64(x: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    arr = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array [N, D], got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        row = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
        raise ValueError(f"{what} holds NaN or infinite values (first at row {row})")
    return arr


def inception_score(logits: np.ndarray | torch.Tensor, splits: int = 10, shuffle: bool = True, seed: int = 2020) -> MeanStd:
    """Inception Score of class logits ``[N, C]``."""
    x = _as_2d_float64(logits, "logits")
    n = x.shape[0]
    if n < splits:
        raise ValueError(f"Inception Score needs at least {splits} samples (one per split), got {n}")
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]
    t = torch.from_numpy(x)
    p = t.softmax(dim=1)
    log_p = t.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(dim=0, keepdim=True)
        kl = (p[lo:hi] * (log_p[lo:hi] - q.log())).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return MeanStd(float(np.mean(scores)), float(np.std(scores)))


def frechet_distance(real: np.ndarray | torch.Tensor, generated: np.ndarray | torch.Tensor) -> float:
    """FID between two feature sets ``[N, D]`` and ``[M, D]``."""
    a = _as_2d_float64(real, "real features")
    b = _as_2d_float64(generated, "generated features")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: real {a.shape[1]}, generated {b.shape[1]}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("FID needs at least 2 samples in each set to estimate a covariance")
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = mu1 - mu2
    tr_covmean = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(np.complex128)).real.sum()
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def _poly_mmd2(x: np.ndarray, y: np.ndarray, degree: int, gamma: float | None, coef0: float) -> float:
    g = 1.0 / x.shape[1] if gamma is None else gamma
    kxx = (x @ x.T * g + coef0) ** degree
    kyy = (y @ y.T * g + coef0) ** degree
    kxy = (x @ y.T * g + coef0) ** degree
    m = x.shape[0]
    off_xx = kxx.sum() - np.trace(kxx)
    off_yy = kyy.sum() - np.trace(kyy)
    return float((off_xx + off_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(
    real: np.ndarray | torch.Tensor,
    generated: np.ndarray | torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,
) -> MeanStd:
    """KID (unbiased polynomial-kernel MMD^2 over random subsets)."""
    a = _as_2d_float64(real, "real features")
    b = _as_2d_float64(generated, "generated features")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: real {a.shape[1]}, generated {b.shape[1]}")
    if a.shape[0] < subset_size or b.shape[0] < subset_size:
        raise ValueError(
            f"KID subset size {subset_size} is larger than a feature set (real {a.shape[0]}, "
            f"generated {b.shape[0]}); lower the subset size"
        )
    if subset_size < 2:
        raise ValueError("KID subset size must be at least 2")
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        xa = a[rng.choice(a.shape[0], subset_size, replace=False)]
        xb = b[rng.choice(b.shape[0], subset_size, replace=False)]
        mmds[i] = _poly_mmd2(xa, xb, degree, gamma, coef0)
    return MeanStd(float(mmds.mean()), float(mmds.std()))


class _FeatureMetric(Metric):
    """Stores real and generated features; optional extractor turns images into features."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, feature_extractor: Callable[[torch.Tensor], torch.Tensor] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.feature_extractor = feature_extractor
        self.add_state("real_features", default=[], dist_reduce_fx="cat")
        self.add_state("generated_features", default=[], dist_reduce_fx="cat")

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if self.feature_extractor is not None:
            with torch.no_grad():
                x = self.feature_extractor(x)
        if x.ndim != 2:
            raise ValueError(f"features must be [B, D], got shape {tuple(x.shape)}")
        return x.detach().double()

    def update(self, x: torch.Tensor, real: bool) -> None:
        """Add a batch of images (with an extractor) or features ``[B, D]``, real or generated."""
        (self.real_features if real else self.generated_features).append(self._features(x))

    def _both(self) -> tuple[torch.Tensor, torch.Tensor]:
        # len(): after a distributed sync the states are one concatenated tensor, not lists
        if len(self.real_features) == 0 or len(self.generated_features) == 0:
            raise ValueError("both real and generated samples are needed before compute()")
        return dim_zero_cat(self.real_features), dim_zero_cat(self.generated_features)


class FID(_FeatureMetric):
    """Fréchet distance between real and generated features (torch-fidelity's formula)."""

    higher_is_better = False

    def compute(self) -> torch.Tensor:
        a, b = self._both()
        return torch.tensor(frechet_distance(a, b), dtype=torch.float64)


class KID(_FeatureMetric):
    """Kernel Inception Distance; ``compute`` returns ``{"kid_mean", "kid_std"}``."""

    higher_is_better = False

    def __init__(self, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma: float | None = None,
                 coef0: float = 1.0, seed: int = 2020, feature_extractor=None, **kwargs):
        super().__init__(feature_extractor=feature_extractor, **kwargs)
        self.options = dict(subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma, coef0=coef0, seed=seed)

    def compute(self) -> dict[str, torch.Tensor]:
        a, b = self._both()
        r = kernel_inception_distance(a, b, **self.options)
        return {"kid_mean": torch.tensor(r.mean, dtype=torch.float64), "kid_std": torch.tensor(r.std, dtype=torch.float64)}


class InceptionScore(Metric):
    """Inception Score from class logits (or images, with a classifier as ``feature_extractor``)."""

    is_differentiable = False
    full_state_update = False
    higher_is_better = True

    def __init__(self, splits: int = 10, seed: int = 2020, feature_extractor=None, **kwargs):
        super().__init__(**kwargs)
        self.splits = splits
        self.seed = seed
        self.feature_extractor = feature_extractor
        self.add_state("logits", default=[], dist_reduce_fx="cat")

    def update(self, x: torch.Tensor) -> None:
        if self.feature_extractor is not None:
            with torch.no_grad():
                x = self.feature_extractor(x)
        if x.ndim != 2:
            raise ValueError(f"logits must be [B, C], got shape {tuple(x.shape)}")
        self.logits.append(x.detach().double())

    def compute(self) -> dict[str, torch.Tensor]:
        if not self.logits:
            raise ValueError("no logits given before compute()")
        r = inception_score(dim_zero_cat(self.logits), splits=self.splits, seed=self.seed)
        return {"is_mean": torch.tensor(r.mean, dtype=torch.float64), "is_std": torch.tensor(r.std, dtype=torch.float64)}
