"""Heatmap rendering for attention and attribution artifacts (PNG-ready uint8 arrays)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def _colormap(values: np.ndarray) -> np.ndarray:
    """Map ``[0, 1]`` values to RGB with matplotlib's ``inferno`` (uint8 ``[..., 3]``)."""
    from matplotlib import colormaps

    return (colormaps["inferno"](np.clip(values, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def normalise(weights: np.ndarray) -> np.ndarray:
    """Scale to ``[0, 1]`` by the map's own range (a constant map becomes zeros)."""
    w = np.asarray(weights, dtype=np.float64)
    lo, hi = float(np.nanmin(w)), float(np.nanmax(w))
    return np.zeros_like(w) if hi - lo <= 1e-12 else (w - lo) / (hi - lo)


def overlay(image: np.ndarray, weights: np.ndarray, *, alpha: float = 0.55, scale: int = 4) -> np.ndarray:
    """The image with a heatmap of ``weights`` (any 2-D grid) blended over it, enlarged ``scale`` times.

    The grid is upsampled bilinearly to the image size so a coarse
    attention grid (e.g. 4x4 CNN tokens) lines up with the pixels it covers.
    """
    h, w = image.shape[:2]
    heat = Image.fromarray((normalise(weights) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    colored = _colormap(np.asarray(heat, dtype=np.float64) / 255.0).astype(np.float64)
    blended = (1 - alpha) * image.astype(np.float64) + alpha * colored
    out = Image.fromarray(blended.clip(0, 255).astype(np.uint8))
    return np.asarray(out.resize((w * scale, h * scale), Image.NEAREST))


def strip(images: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Images of equal height side by side with a white gap (e.g. one heatmap per generated word)."""
    h = max(i.shape[0] for i in images)
    parts = []
    for img in images:
        canvas = np.full((h, img.shape[1], 3), 255, dtype=np.uint8)
        canvas[: img.shape[0]] = img
        parts.extend([canvas, np.full((h, pad, 3), 255, dtype=np.uint8)])
    return np.concatenate(parts[:-1], axis=1)
