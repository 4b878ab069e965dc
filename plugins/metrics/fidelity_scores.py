"""Inception Score, FID and KID as torch-fidelity computes them, from features, in numpy.

Torch-free on purpose: ``polymodal score fid|kid|is`` on feature files must not
pay for importing torch, and the in-run metrics in
:mod:`polymodal_plugins.metrics.fidelity` call these same functions.

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

KID is where the time goes: torch-fidelity builds three ``subset_size^2``
kernel matrices per subset (100 x 3 x 1000^2 x D multiply-adds by default).
The same draws touch at most ``N`` distinct rows, so when the full kernel
matrices fit :data:`KID_MEMORY_BOUND` we build them once and read every
subset's sums off them as quadratic forms ``c^T K c`` with the subsets'
indicator vectors, all subsets in one matrix product; otherwise (or when the
subsets are cheaper, e.g. a few small subsets of a huge set) per subset.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

#: Most bytes the three full KID kernel matrices may take before KID goes subset by subset.
KID_MEMORY_BOUND = 2 * 1024**3


@attrs.frozen
class MeanStd:
    """A score over random splits or subsets: mean and population std."""

    mean: float
    std: float


def _as_2d_float64(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, recognised without importing torch
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array [N, D], got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        row = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
        raise ValueError(f"{what} holds NaN or infinite values (first at row {row})")
    return arr


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def inception_score(logits: Any, splits: int = 10, shuffle: bool = True, seed: int = 2020) -> MeanStd:
    """Inception Score of class logits ``[N, C]``."""
    x = _as_2d_float64(logits, "logits")
    n = x.shape[0]
    if n < splits:
        raise ValueError(f"Inception Score needs at least {splits} samples (one per split), got {n}")
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]
    log_p = _log_softmax(x)
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(axis=0, keepdims=True)
        kl = (p[lo:hi] * (log_p[lo:hi] - np.log(q))).sum(axis=1).mean()
        scores.append(float(np.exp(kl)))
    return MeanStd(float(np.mean(scores)), float(np.std(scores)))


def frechet_distance(real: Any, generated: Any) -> float:
    """FID between two feature sets ``[N, D]`` and ``[M, D]``."""
    a = _as_2d_float64(real, "real features")
    b = _as_2d_float64(generated, "generated features")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: real {a.shape[1]}, generated {b.shape[1]}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("FID needs at least 2 samples in each set to estimate a covariance")
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    diff = mu1 - mu2
    n, m, d = a.shape[0], b.shape[0], a.shape[1]
    if max(n, m) < d:
        # Fewer samples than dimensions: with s1 = A A^T and s2 = B B^T (A, B the centred features over
        # sqrt(n - 1)), the eigenvalues of s1 s2 are the squared singular values of A^T B, so
        # tr sqrt(s1 s2) is A^T B's nuclear norm: an n x m problem instead of a d x d eigensolve
        # (2048-d Inception features of a few hundred images: seconds instead of minutes), and exact.
        ca = (a - mu1) / np.sqrt(n - 1)
        cb = (b - mu2) / np.sqrt(m - 1)
        tr_covmean = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
        return float(diff @ diff + (ca * ca).sum() + (cb * cb).sum() - 2 * tr_covmean)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    tr_covmean = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(np.complex128)).real.sum()
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def _poly(x: np.ndarray, y: np.ndarray, degree: int, g: float, coef0: float) -> np.ndarray:
    k = x @ y.T
    k *= g
    k += coef0
    return k**degree


def _poly_mmd2(x: np.ndarray, y: np.ndarray, degree: int, g: float, coef0: float) -> float:
    kxx, kyy, kxy = _poly(x, x, degree, g, coef0), _poly(y, y, degree, g, coef0), _poly(x, y, degree, g, coef0)
    m = x.shape[0]
    off_xx = kxx.sum() - np.trace(kxx)
    off_yy = kyy.sum() - np.trace(kyy)
    return float((off_xx + off_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def _subset_sums(kernel: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left[s]^T K right[s]`` for every subset ``s`` (rows of the count matrices), in one product."""
    return np.einsum("sj,sj->s", left @ kernel, right)


def kernel_inception_distance(
    real: Any,
    generated: Any,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,
    memory_bound: int = KID_MEMORY_BOUND,
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
    g = 1.0 / a.shape[1] if gamma is None else gamma
    rng = np.random.RandomState(seed)
    draws = [(rng.choice(a.shape[0], subset_size, replace=False), rng.choice(b.shape[0], subset_size, replace=False))
             for _ in range(subsets)]
    n_a, n_b, dim, m = a.shape[0], b.shape[0], a.shape[1], subset_size
    full_bytes = 8 * (n_a * n_a + n_b * n_b + n_a * n_b + 2 * subsets * (n_a + n_b))
    full_cost = (n_a * n_a + n_b * n_b + n_a * n_b) * dim + subsets * (n_a * n_a + n_b * n_b + n_a * n_b)
    subset_cost = subsets * 3 * m * m * dim
    if full_bytes > memory_bound or full_cost >= subset_cost:
        mmds = np.array([_poly_mmd2(a[ia], b[ib], degree, g, coef0) for ia, ib in draws])
        return MeanStd(float(mmds.mean()), float(mmds.std()))
    ca = np.zeros((subsets, n_a))
    cb = np.zeros((subsets, n_b))
    for s, (ia, ib) in enumerate(draws):
        ca[s, ia] = 1.0  # drawn without replacement: each row at most once
        cb[s, ib] = 1.0
    kaa = _poly(a, a, degree, g, coef0)
    off_aa = _subset_sums(kaa, ca, ca) - ca @ np.diagonal(kaa)
    del kaa
    kbb = _poly(b, b, degree, g, coef0)
    off_bb = _subset_sums(kbb, cb, cb) - cb @ np.diagonal(kbb)
    del kbb
    cross = _subset_sums(_poly(a, b, degree, g, coef0), ca, cb)
    mmds = (off_aa + off_bb) / (m * (m - 1)) - 2 * cross / (m * m)
    return MeanStd(float(mmds.mean()), float(mmds.std()))
