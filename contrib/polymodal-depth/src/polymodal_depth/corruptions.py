"""Depth corruptions (raw format ``depth``: ``[H, W]`` metres, 0 = no reading).

Each severity (1..5) reads its strength from a table; randomness comes only
from the generator the noise axis passes, which is the same for every
severity of a sample, so damage grows with severity instead of reshuffling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal_depth.modality import check_depth

NOISE = (0.01, 0.03, 0.05, 0.08, 0.12)
HOLES = (0.05, 0.12, 0.2, 0.35, 0.5)
BLOCK = 4


def sensor_noise(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise proportional to depth (time-of-flight sensors err more far away); holes stay holes."""
    depth = check_depth(raw)
    noisy = depth * (1.0 + NOISE[severity - 1] * rng.standard_normal(depth.shape).astype(np.float32))
    return np.where(depth > 0, np.clip(noisy, 1e-3, None), 0.0).astype(np.float32)


def holes(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blocks of missing readings (depth 0) covering about the severity's share of the map."""
    depth = check_depth(raw).copy()
    h, w = depth.shape
    gh, gw = -(-h // BLOCK), -(-w // BLOCK)
    drop = rng.random((gh, gw)) < HOLES[severity - 1]
    mask = np.kron(drop, np.ones((BLOCK, BLOCK), dtype=bool))[:h, :w]
    depth[mask] = 0.0
    return depth
