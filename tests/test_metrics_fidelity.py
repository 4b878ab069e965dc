"""IS / FID / KID from features against golden values computed by torch-fidelity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polymodal_plugins.metrics.fidelity import (
    FID, KID, InceptionScore, frechet_distance, inception_score, kernel_inception_distance,
)


def fidelity_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed float64 features (real, generated) and logits, from a seeded generator."""
    rng = np.random.default_rng(1234)
    real = rng.normal(size=(120, 16))
    fake = rng.normal(loc=0.3, scale=1.2, size=(110, 16)) + 0.1 * rng.normal(size=(110, 1))
    logits = rng.normal(scale=3.0, size=(103, 12))
    return real, fake, logits


GOLDEN_FIDELITY: dict[str, float] = {'fid': 3.573197609646428, 'kid_mean': 0.273423710930923, 'kid_std': 0.11745515292470836, 'is_mean': 3.3935576595877395, 'is_std': 0.3033438167795091}


def test_functions_match_torch_fidelity_golden():
    real, fake, logits = fidelity_inputs()
    assert frechet_distance(real, fake) == pytest.approx(GOLDEN_FIDELITY["fid"], abs=1e-6)
    kid = kernel_inception_distance(real, fake, subsets=10, subset_size=50)
    assert kid.mean == pytest.approx(GOLDEN_FIDELITY["kid_mean"], abs=1e-9)
    assert kid.std == pytest.approx(GOLDEN_FIDELITY["kid_std"], abs=1e-9)
    isc = inception_score(logits, splits=10)
    assert isc.mean == pytest.approx(GOLDEN_FIDELITY["is_mean"], abs=1e-9)
    assert isc.std == pytest.approx(GOLDEN_FIDELITY["is_std"], abs=1e-9)


def test_metric_classes_in_batches_equal_golden():
    real, fake, logits = fidelity_inputs()
    fid, kid, isc = FID(), KID(subsets=10, subset_size=50), InceptionScore()
    for lo in range(0, 120, 50):
        fid.update(torch.from_numpy(real[lo:lo + 50]), real=True)
        kid.update(torch.from_numpy(real[lo:lo + 50]), real=True)
    for lo in range(0, 110, 40):
        fid.update(torch.from_numpy(fake[lo:lo + 40]), real=False)
        kid.update(torch.from_numpy(fake[lo:lo + 40]), real=False)
    for lo in range(0, 103, 30):
        isc.update(torch.from_numpy(logits[lo:lo + 30]))
    assert float(fid.compute()) == pytest.approx(GOLDEN_FIDELITY["fid"], abs=1e-6)
    assert float(kid.compute()["kid_mean"]) == pytest.approx(GOLDEN_FIDELITY["kid_mean"], abs=1e-9)
    assert float(isc.compute()["is_mean"]) == pytest.approx(GOLDEN_FIDELITY["is_mean"], abs=1e-9)


def test_fid_of_identical_sets_is_zero_and_grows_with_shift():
    real, _, _ = fidelity_inputs()
    assert abs(frechet_distance(real, real)) < 1e-8
    assert frechet_distance(real, real + 1.0) == pytest.approx(16.0, abs=1e-6)  # |mu shift|^2 = D


def test_bad_inputs_are_rejected():
    real, fake, _ = fidelity_inputs()
    bad = fake.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        frechet_distance(real, bad)
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(real, fake[:, :8])
    with pytest.raises(ValueError, match="subset size"):
        kernel_inception_distance(real, fake, subset_size=500)
    with pytest.raises(ValueError, match="at least 10"):
        inception_score(np.zeros((5, 3)))
