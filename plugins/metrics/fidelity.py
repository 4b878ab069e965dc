"""Inception Score, FID and KID as torchmetrics ``Metric`` classes.

The numbers come from the torch-free kernels in
:mod:`polymodal_plugins.metrics.fidelity_scores` (re-exported here), which
``polymodal score fid|kid|is`` also calls, so the in-run metrics and scoring
a file can never disagree. The Metric classes store features (or logits) as
``cat`` states, so batches and processes combine exactly. A
``feature_extractor`` (any callable mapping an image batch to ``[B, D]``,
e.g. from :func:`build_feature_extractor`) lets ``update`` take images
instead of features.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from polymodal_plugins.metrics.fidelity_scores import (  # noqa: F401  (re-exported: the public names)
    MeanStd,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)


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
