"""The image modality: PNG/JPEG/GIF/WebP via Pillow -> normalised ``[3, H, W]``.

Resizing, cropping and normalisation follow the encoder's own data config
(``configure``): timm's ``resolve_data_config`` output (``input_size``,
``mean``, ``std``, ``interpolation``, ``crop_pct``) or a transformers image
processor's settings (``size``, ``image_mean``, ``image_std``). Preprocessing
is done with torch so in-memory arrays (e.g. the ``shapes`` dataset) never
round-trip through Pillow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from polymodal.batch import ModalityBatch
from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal.traits import ModalityTraits

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    h, w = (int(s) for s in size)
    return (h, w)


def open_image(path: str | os.PathLike[str], max_pixels: int, frame: int = 0) -> Image.Image:
    """Open and fully decode one frame of an image file, as RGB.

    The pixel count is checked from the header *before* decoding, so a
    decompression bomb is refused without allocating it.
    """
    try:
        img = Image.open(path)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
        raise DataError(f"{path}: cannot read image: {type(exc).__name__}: {exc}") from None
    with img:
        w, h = img.size
        if w * h > max_pixels:
            raise DataError(f"{path}: image is {w}x{h} pixels, more than the limit of {max_pixels}")
        try:
            if frame:
                img.seek(frame)
            return img.convert("RGB")
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{path}: corrupt or truncated image: {type(exc).__name__}: {exc}") from None


class ImageModality:
    """Images as float tensors ``[3, H, W]``; a batch is ``[B, 3, H, W]`` with mask ``[B]``."""

    name = "image"
    traits = ModalityTraits(continuous=True, perturb_input=True, value_range=(0.0, 1.0), normalised=True,
                            channel_dim=0, space_dims=(1, 2), pictorial=True, raw_format="rgb")

    def __init__(
        self,
        size: int | Sequence[int] = 32,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        interpolation: str = "bilinear",
        crop_pct: float = 1.0,
        max_pixels: int = 50_000_000,
    ) -> None:
        self.size = _pair(size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if interpolation not in _INTERPOLATIONS:
            raise DataError(f"image interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
        if not 0.0 < crop_pct <= 1.0:
            raise DataError(f"image crop_pct must be in (0, 1], got {crop_pct}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise DataError("image mean and std need 3 values each, std > 0")
        self.interpolation = interpolation
        self.crop_pct = float(crop_pct)
        self.max_pixels = int(max_pixels)
        self._mean_t = torch.tensor(self.mean).view(3, 1, 1)
        self._std_t = torch.tensor(self.std).view(3, 1, 1)

    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel ``(mean, std)`` that ``preprocess`` applied (the ``normalised`` trait)."""
        return self.mean, self.std

    def configure(self, preprocess_config: Mapping[str, Any]) -> ImageModality:
        """Adopt an encoder's data config (timm or transformers image-processor keys); changes and returns ``self``."""
        cfg = dict(preprocess_config)
        if "image" in cfg and isinstance(cfg["image"], Mapping):
            cfg = dict(cfg["image"])
        size: Any = self.size
        if "input_size" in cfg:  # timm: (C, H, W)
            size = tuple(cfg["input_size"])[-2:]
        elif "size" in cfg:  # transformers image processor
            s = cfg["size"]
            if isinstance(s, Mapping):
                if "height" in s and "width" in s:
                    size = (s["height"], s["width"])
                elif "shortest_edge" in s:
                    size = s["shortest_edge"]
            else:
                size = s
        crop_pct = cfg.get("crop_pct", self.crop_pct) or 1.0
        interpolation = cfg.get("interpolation", cfg.get("resample", self.interpolation))
        if isinstance(interpolation, int):  # PIL resample codes used by transformers
            interpolation = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(interpolation, "bilinear")
        if interpolation not in _INTERPOLATIONS:
            interpolation = "bicubic" if "cubic" in str(interpolation) else "bilinear"
        out = ImageModality(
            size=size,
            mean=cfg.get("mean", cfg.get("image_mean", self.mean)),
            std=cfg.get("std", cfg.get("image_std", self.std)),
            interpolation=interpolation,
            crop_pct=min(float(crop_pct), 1.0),
            max_pixels=self.max_pixels,
        )
        # In place: a caller that ignores the return value must not keep the old preprocessing (issue 18).
        self.__dict__.update(out.__dict__)
        return self

    def load(self, value: Any, root: str | os.PathLike[str] | None = None) -> Image.Image | np.ndarray | torch.Tensor:
        """A path (inside ``root``) is opened with Pillow; arrays and images pass through."""
        if isinstance(value, str | os.PathLike):
            return open_image(resolve_inside(root, value), self.max_pixels)
        if isinstance(value, Image.Image | np.ndarray | torch.Tensor):
            return value
        raise DataError(f"image: expected a path, PIL image, array or tensor, got {type(value).__name__}")

    def _to_tensor(self, raw: Any) -> torch.Tensor:
        """``[3, h, w]`` float in [0, 1]."""
        if isinstance(raw, Image.Image):
            raw = np.asarray(raw.convert("RGB"))
        if isinstance(raw, np.ndarray):
            arr = raw
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=2)
            if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
                raise DataError(f"image array has shape {arr.shape}; expected [H, W], [H, W, 3] or [H, W, 4]")
            if arr.shape[2] == 1:
                arr = np.repeat(arr, 3, axis=2)
            arr = arr[..., :3]
            arr = np.ascontiguousarray(arr)
            if not arr.flags.writeable:  # e.g. np.asarray(PIL image); torch wants writable memory
                arr = arr.copy()
            t = torch.from_numpy(arr).permute(2, 0, 1)
            return t.float().div_(255.0) if arr.dtype == np.uint8 else t.float()
        if isinstance(raw, torch.Tensor):
            if raw.dim() != 3 or raw.shape[0] not in (1, 3):
                raise DataError(f"image tensor has shape {tuple(raw.shape)}; expected [3, H, W] or [1, H, W]")
            t = raw.expand(3, -1, -1) if raw.shape[0] == 1 else raw
            return t.float().div(255.0) if raw.dtype == torch.uint8 else t.float()
        raise DataError(f"image: cannot preprocess a {type(raw).__name__}")

    def preprocess(self, raw: Any) -> torch.Tensor:
        """Resize the shorter side to ``size / crop_pct``, centre-crop ``size``, normalise."""
        t = self._to_tensor(raw)
        h, w = t.shape[-2:]
        if h == 0 or w == 0:
            raise DataError("image has zero width or height")
        th, tw = self.size
        if (h, w) != (th, tw) or self.crop_pct < 1.0:
            scale = max(th / h, tw / w) / self.crop_pct
            nh, nw = max(th, math.floor(h * scale + 0.5)), max(tw, math.floor(w * scale + 0.5))
            if (nh, nw) != (h, w):
                t = F.interpolate(
                    t.unsqueeze(0), size=(nh, nw), mode=self.interpolation,
                    antialias=self.interpolation != "nearest",
                    **({} if self.interpolation == "nearest" else {"align_corners": False}),
                ).squeeze(0)
            top, left = (nh - th) // 2, (nw - tw) // 2
            t = t[:, top : top + th, left : left + tw]
        return (t - self._mean_t) / self._std_t

    def preprocess_batch(self, raws: Sequence[Any]) -> ModalityBatch | None:
        """The batch of uint8 ``[H, W, 3]`` arrays already at ``size`` in one operation; None for other inputs.

        The same arithmetic as ``preprocess`` per image (``/255``, ``- mean``,
        ``/ std`` in float32), so the values are identical; the win is one
        tensor operation per batch instead of several per image.
        """
        present = [r for r in raws if r is not None]
        if not present or self.crop_pct < 1.0:
            return None
        shape = (*self.size, 3)
        if not all(isinstance(r, np.ndarray) and r.dtype == np.uint8 and r.shape == shape for r in present):
            return None
        # One pass converts uint8 HWC to contiguous float CHW; the rest is in place.
        t = torch.empty(len(present), 3, *self.size)
        t.copy_(torch.from_numpy(np.stack(present)).permute(0, 3, 1, 2))
        t.div_(255.0).sub_(self._mean_t).div_(self._std_t)
        if len(present) == len(raws):
            return ModalityBatch(t, torch.ones(len(raws), dtype=torch.bool), {"modality": self.name})
        mask = torch.tensor([r is not None for r in raws], dtype=torch.bool)
        data = torch.zeros(len(raws), 3, *self.size)
        data[mask] = t
        return ModalityBatch(data, mask, {"modality": self.name})

    def collate(self, values: Sequence[torch.Tensor | None]) -> ModalityBatch:
        """Stack into ``[B, 3, H, W]``; missing images are zeros with a false mask."""
        h, w = self.size
        data = torch.zeros(len(values), 3, h, w)
        mask = torch.zeros(len(values), dtype=torch.bool)
        for i, v in enumerate(values):
            if v is not None:
                data[i] = v
                mask[i] = True
        return ModalityBatch(data, mask, {"modality": self.name})

    def describe(self) -> dict[str, Any]:
        return {
            "modality": self.name, "size": list(self.size), "mean": list(self.mean), "std": list(self.std),
            "interpolation": self.interpolation, "crop_pct": self.crop_pct,
        }
