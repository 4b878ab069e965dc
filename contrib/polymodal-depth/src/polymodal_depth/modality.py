"""The ``depth`` modality: single-channel depth maps in metres.

Raw values (what :meth:`DepthModality.load` returns) are ``[H, W]`` float32
arrays in metres, 0 meaning "no reading". Files: ``.npy`` (metres) or a
16-bit PNG (millimetres, the usual sensor export). ``preprocess`` resizes to
``size`` and divides by ``max_depth``, so the model sees ``[1, H, W]`` in
[0, 1]; the traits say exactly that, and the built-in axes need nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from polymodal import DataError
from polymodal.batch import ModalityBatch
from polymodal.data import resolve_inside
from polymodal.traits import ModalityTraits

MM_PER_M = 1000.0


def read_depth(path: str | os.PathLike[str]) -> np.ndarray:
    """A depth map in metres from ``.npy`` (metres) or a 16-bit PNG (millimetres)."""
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    try:
        if suffix == "npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == "png":
            from PIL import Image

            with Image.open(path) as img:
                if img.mode not in ("I;16", "I;16B", "I", "L"):
                    raise DataError(f"{path}: a depth PNG must be 16-bit greyscale (millimetres), got mode {img.mode}")
                arr = np.asarray(img, dtype=np.float32) / MM_PER_M
        else:
            raise DataError(f"{path}: depth files are .npy (metres) or 16-bit .png (millimetres)")
    except DataError:
        raise
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read depth: {type(exc).__name__}: {exc}") from None
    return check_depth(arr, str(path))


def check_depth(arr: Any, where: str = "depth") -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:2])
    if arr.ndim != 2 or 0 in arr.shape:
        raise DataError(f"{where}: expected a depth map [H, W], got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise DataError(f"{where}: depth must be finite and >= 0 metres")
    return arr


class DepthModality:
    """Depth maps as ``[1, size, size]`` tensors in [0, 1] (metres / ``max_depth``); batch mask ``[B]``."""

    name = "depth"
    traits = ModalityTraits(continuous=True, perturb_input=True, value_range=(0.0, 1.0), channel_dim=0,
                            space_dims=(1, 2), raw_format="depth")

    def __init__(self, size: int = 32, max_depth: float = 10.0) -> None:
        if size < 4 or max_depth <= 0:
            raise DataError(f"depth: size must be >= 4 and max_depth > 0, got {size}, {max_depth}")
        self.size = int(size)
        self.max_depth = float(max_depth)

    def configure(self, preprocess_config: Mapping[str, Any]) -> DepthModality:
        cfg = dict(preprocess_config)
        return DepthModality(int(cfg.get("size", self.size)), float(cfg.get("max_depth", self.max_depth)))

    def load(self, value: Any, root: str | os.PathLike[str] | None = None) -> np.ndarray:
        if isinstance(value, str | os.PathLike):
            return read_depth(resolve_inside(root, value))
        if isinstance(value, np.ndarray | torch.Tensor):
            return check_depth(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)
        raise DataError(f"depth: expected a path or an array, got {type(value).__name__}")

    def preprocess(self, raw: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(check_depth(raw)).clamp(0, self.max_depth)[None, None] / self.max_depth
        if tuple(t.shape[-2:]) != (self.size, self.size):
            t = F.interpolate(t, size=(self.size, self.size), mode="nearest")  # never blend a hole into a reading
        return t[0]

    def collate(self, values: Sequence[torch.Tensor | None]) -> ModalityBatch:
        data = torch.zeros(len(values), 1, self.size, self.size)
        mask = torch.zeros(len(values), dtype=torch.bool)
        for i, v in enumerate(values):
            if v is not None:
                data[i], mask[i] = v, True
        return ModalityBatch(data, mask, {"modality": self.name})

    def describe(self) -> dict[str, Any]:
        return {"modality": self.name, "size": [self.size, self.size], "image_size": self.size, "channels": 1,
                "max_depth": self.max_depth}
