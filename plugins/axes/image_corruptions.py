"""Image corruptions (after Hendrycks & Dietterich's ImageNet-C, on raw pixels).

Each takes an image as a PIL image, a ``[H, W, 3]`` array (uint8, or float in
[0, 1]) or a ``[3, H, W]`` float tensor, and returns a ``[H, W, 3]`` uint8
array, which every image loader accepts.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from polymodal.errors import DataError
from polymodal_plugins.axes.corruption import level


def to_float_image(raw: Any) -> np.ndarray:
    """``[H, W, 3]`` float32 in [0, 1] from the raw forms an image loader produces."""
    if isinstance(raw, Image.Image):
        arr = np.asarray(raw.convert("RGB"))
    else:
        arr = np.asarray(raw.detach().cpu() if hasattr(raw, "detach") else raw)
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)  # CHW tensor -> HWC
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise DataError(f"image corruption: expected an image [H, W, 3], got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def gaussian_noise(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    img = to_float_image(raw)
    sigma = level((0.04, 0.08, 0.12, 0.18, 0.26), severity)
    return to_uint8(img + rng.standard_normal(img.shape, dtype=np.float32) * sigma)


def blur(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    img = to_float_image(raw)
    # Relative to the side so a 32 px and a 224 px image lose the same detail.
    sigma = level((0.03, 0.045, 0.06, 0.085, 0.12), severity) * min(img.shape[:2])
    return to_uint8(gaussian_filter(img, sigma=(sigma, sigma, 0), mode="nearest"))


def jpeg(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    quality = int(level((60, 30, 18, 10, 5), severity))
    buf = io.BytesIO()
    Image.fromarray(to_uint8(to_float_image(raw))).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def occlusion(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    img = to_float_image(raw).copy()
    h, w = img.shape[:2]
    area = level((0.05, 0.12, 0.2, 0.32, 0.5), severity)
    side_h, side_w = max(1, round(h * area ** 0.5)), max(1, round(w * area ** 0.5))
    # The centre is drawn once (severity-independent); the square grows around it.
    cy, cx = rng.random(2)
    top = int(round(cy * (h - side_h)))
    left = int(round(cx * (w - side_w)))
    img[top:top + side_h, left:left + side_w] = 0.5
    return to_uint8(img)


def contrast(raw: Any, severity: int, rng: np.random.Generator) -> np.ndarray:
    img = to_float_image(raw)
    keep = level((0.6, 0.4, 0.3, 0.2, 0.1), severity)
    mean = img.mean(axis=(0, 1), keepdims=True)
    return to_uint8((img - mean) * keep + mean)
