"""Audio corruptions on raw waveforms: noise at an SNR, clipping, time masking.

Values are :class:`polymodal.data.AudioClip` (or anything the audio loader
accepts as an in-memory array); the result is always an ``AudioClip``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.data import AudioClip
from polymodal.errors import DataError
from polymodal_plugins.axes.corruption import level


def _clip(raw: Any) -> AudioClip:
    if isinstance(raw, AudioClip):
        samples = np.asarray(raw.samples, dtype=np.float32)
        return AudioClip(samples[None] if samples.ndim == 1 else samples, raw.sample_rate)
    if isinstance(raw, tuple) and len(raw) == 2:
        return _clip(AudioClip(np.asarray(raw[0], dtype=np.float32), int(raw[1])))
    raise DataError(f"audio corruption: expected an AudioClip or (samples, rate), got {type(raw).__name__}")


def gaussian_noise(raw: Any, severity: int, rng: np.random.Generator) -> AudioClip:
    clip = _clip(raw)
    snr_db = level((30.0, 20.0, 10.0, 5.0, 0.0), severity)
    power = float(np.mean(clip.samples.astype(np.float64) ** 2))
    noise = rng.standard_normal(clip.samples.shape).astype(np.float32)
    noise *= np.float32(np.sqrt(power / 10 ** (snr_db / 10)))
    return AudioClip(clip.samples + noise, clip.sample_rate)


def clipping(raw: Any, severity: int, rng: np.random.Generator) -> AudioClip:
    clip = _clip(raw)
    limit = level((0.6, 0.35, 0.2, 0.1, 0.05), severity) * float(np.abs(clip.samples).max())
    return AudioClip(np.clip(clip.samples, -limit, limit), clip.sample_rate)


def time_mask(raw: Any, severity: int, rng: np.random.Generator) -> AudioClip:
    clip = _clip(raw)
    length = clip.samples.shape[-1]
    fraction = level((0.1, 0.2, 0.3, 0.45, 0.6), severity)
    starts = np.sort(rng.random(3))
    samples = clip.samples.copy()
    block = int(round(fraction * length / 3))
    # Three blocks at fixed relative positions (severity-independent) that widen with severity;
    # each starts inside its own third of the clip, so they never overlap.
    for k, s in enumerate(starts):
        lo = int((k + s * (1 - fraction)) * length / 3)
        samples[..., lo:lo + block] = 0.0
    return AudioClip(samples, clip.sample_rate)
