"""Video corruptions on raw frame sequences: frame drop, frame shuffle.

Values are ``[N, H, W, 3]`` arrays or lists of frames; the length is kept
(a dropped frame is replaced by the last frame received, as a stalled stream
shows it) so models with a fixed frame count still run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.errors import DataError
from polymodal_plugins.axes.corruption import level


def _frames(raw: Any) -> np.ndarray:
    arr = np.stack([np.asarray(f) for f in raw]) if isinstance(raw, list | tuple) else np.asarray(raw)
    if arr.ndim != 4 or len(arr) == 0:
        raise DataError(f"video corruption: expected frames [N, H, W, C], got shape {arr.shape}")
    return arr


def frame_drop(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    frames = _frames(raw)
    p = level((0.1, 0.25, 0.4, 0.55, 0.7), severity)
    dropped = rng.random(len(frames)) < p
    dropped[0] = False  # the first frame is always received: there is nothing earlier to hold
    source = np.maximum.accumulate(np.where(dropped, 0, np.arange(len(frames))))
    return frames[source]


def frame_shuffle(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    frames = _frames(raw)
    p = level((0.2, 0.4, 0.6, 0.8, 1.0), severity)
    chosen = np.nonzero(rng.random(len(frames)) < p)[0]
    order = np.arange(len(frames))
    if len(chosen) > 1:
        shift = 1 + int(rng.integers(0, len(chosen) - 1))
        order[np.roll(chosen, shift)] = chosen
    return frames[order]
