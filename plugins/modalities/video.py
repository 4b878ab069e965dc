"""The video modality: clips -> ``[K, 3, H, W]`` frames; a batch is ``[B, K, 3, H, W]``.

A clip is a video file (``.mp4``/``.webm``/``.mkv``/``.avi``/``.mov``, decoded
with PyAV: see :mod:`~polymodal_plugins.modalities.video_files`), a folder of
frame images (sorted by name), an animated GIF/WebP, a ``.npy`` array
``[N, H, W, 3]`` (read with ``allow_pickle=False``) or an in-memory array.
``frames`` frames are sampled uniformly (deterministic, the default) or
randomly (sorted, for training augmentation; ``seed`` fixes the draw per
clip), and each is preprocessed exactly like an image (see
:class:`ImageModality`; configure from an image encoder's data config).
Video files are sampled by time while decoding (only the wanted frames are
decoded); ``fps`` samples ``frames`` frames at that rate instead of spread
over the whole clip.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from polymodal.batch import ModalityBatch
from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal.traits import ModalityTraits
from polymodal_plugins.modalities.image import ImageModality, open_image
from polymodal_plugins.modalities.video_files import is_container, read_video

FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
SAMPLING = ("uniform", "random")


class VideoModality:
    """Sampled, preprocessed frames; ``mask[b, k]`` marks real frames."""

    name = "video"
    traits = ModalityTraits(continuous=True, perturb_input=True, value_range=(0.0, 1.0), normalised=True,
                            channel_dim=1, space_dims=(2, 3), time_dims=(0,), raw_format="frames", task="video",
                            preview="frames")

    def __init__(
        self,
        frames: int = 8,
        sampling: str = "uniform",
        size: int | Sequence[int] = 32,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        interpolation: str = "bilinear",
        crop_pct: float = 1.0,
        max_source_frames: int = 10_000,
        max_pixels: int = 50_000_000,
        fps: float | None = None,
        seed: int | None = None,
    ) -> None:
        if frames < 1:
            raise DataError(f"video frames must be >= 1, got {frames}")
        if sampling not in SAMPLING:
            raise DataError(f"video sampling must be one of {SAMPLING}, got {sampling!r}")
        if fps is not None and not fps > 0:
            raise DataError(f"video fps must be > 0 (or unset to spread frames over the clip), got {fps}")
        self.frames = int(frames)
        self.sampling = sampling
        self.fps = None if fps is None else float(fps)
        self.seed = None if seed is None else int(seed)
        self.max_source_frames = int(max_source_frames)
        self.image = ImageModality(size, mean, std, interpolation, crop_pct, max_pixels)

    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel ``(mean, std)`` of the frames (the ``normalised`` trait)."""
        return self.image.normalisation()

    def configure(self, preprocess_config: Mapping[str, Any]) -> VideoModality:
        """Per-frame preprocessing from an image encoder's config; ``frames``/``sampling`` too."""
        cfg = dict(preprocess_config)
        image = ImageModality(self.image.size, self.image.mean, self.image.std, self.image.interpolation,
                              self.image.crop_pct, self.image.max_pixels).configure(cfg.get("frame", cfg))
        out = VideoModality(int(cfg.get("frames", self.frames)), str(cfg.get("sampling", self.sampling)),
                            image.size, image.mean, image.std, image.interpolation, image.crop_pct,
                            self.max_source_frames, image.max_pixels, cfg.get("fps", self.fps),
                            cfg.get("seed", self.seed))
        # In place: a caller that ignores the return value must not keep the old preprocessing (issue 18).
        self.__dict__.update(out.__dict__)
        return self

    def _read_path(self, path: Path) -> list[Image.Image] | np.ndarray:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file())
            if not files:
                raise DataError(f"{path}: video folder has no frame images ({', '.join(sorted(FRAME_SUFFIXES))})")
            if len(files) > self.max_source_frames:
                raise DataError(f"{path}: video folder has {len(files)} frames, more than {self.max_source_frames}")
            return [open_image(f, self.image.max_pixels) for f in files]
        if not path.exists():
            raise DataError(f"{path}: video not found")
        if is_container(path):
            return read_video(path, self.frames, self.fps, self.sampling, self.seed, self.image.max_pixels,
                              self.max_source_frames)
        if path.suffix.lower() == ".npy":
            try:
                arr = np.load(path, allow_pickle=False, mmap_mode="r")
            except Exception as exc:  # noqa: BLE001 - numpy raises ValueError/OSError for bad files
                raise DataError(f"{path}: cannot read .npy video: {type(exc).__name__}: {exc}") from None
            self._check_array(arr, str(path))
            return np.array(arr)
        try:
            img = Image.open(path)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{path}: cannot read video: {type(exc).__name__}: {exc}") from None
        with img:
            try:  # counting frames parses the whole file; a corrupt one fails here
                n = int(getattr(img, "n_frames", 1))
            except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
                raise DataError(f"{path}: corrupt animation: {type(exc).__name__}: {exc}") from None
            w, h = img.size
            if n > self.max_source_frames or w * h * n > self.image.max_pixels * 4:
                raise DataError(f"{path}: animation has {n} frames of {w}x{h}, over the configured limits")
            frames = []
            try:
                for i in range(n):
                    img.seek(i)
                    frames.append(img.convert("RGB"))
            except Exception as exc:  # noqa: BLE001
                raise DataError(f"{path}: corrupt animation at frame {len(frames)}: {exc}") from None
        return frames

    def _check_array(self, arr: np.ndarray, where: str) -> None:
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{where}: video array has dtype {arr.dtype}; expected integers or floats")
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3) or arr.shape[0] == 0:
            raise DataError(f"{where}: video array has shape {tuple(arr.shape)}; expected [N, H, W, 3] with N > 0")
        if arr.shape[0] > self.max_source_frames:
            raise DataError(f"{where}: video has {arr.shape[0]} frames, more than {self.max_source_frames}")

    def load(self, value: Any, root: str | os.PathLike[str] | None = None) -> list[Image.Image] | np.ndarray:
        if isinstance(value, str | os.PathLike):
            return self._read_path(resolve_inside(root, value))
        if isinstance(value, np.ndarray):
            self._check_array(value, "video")
            return value
        if isinstance(value, list | tuple) and value and all(isinstance(f, Image.Image | np.ndarray) for f in value):
            return list(value)
        raise DataError(f"video: expected a path, an array [N, H, W, 3] or a list of frames, got {type(value).__name__}")

    def _indices(self, n: int) -> np.ndarray:
        if self.sampling == "random" and n >= self.frames:
            return np.sort(np.random.choice(n, self.frames, replace=False))
        # Uniform: centres of K equal segments; short clips repeat frames.
        return np.minimum(((np.arange(self.frames) + 0.5) * n / self.frames).astype(int), n - 1)

    def preprocess(self, raw: list[Image.Image] | np.ndarray) -> torch.Tensor:
        """``[K, 3, H, W]``: normalised float frames, or raw uint8 ones that ``collate`` normalises."""
        n = len(raw)
        if n == 0:
            raise DataError("video has no frames")
        idx = self._indices(n)
        if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.shape[1:3] == self.image.size \
                and self.image.crop_pct == 1.0 and raw.shape[-1] == 3:
            # Fast path: frames already at the target size stay uint8 (4x less to copy
            # between workers); collate normalises the whole batch in one operation.
            return torch.from_numpy(np.ascontiguousarray(raw[idx])).permute(0, 3, 1, 2)
        return torch.stack([self.image.preprocess(raw[int(i)]) for i in idx])

    def preprocess_batch(self, raws: Sequence[Any]) -> ModalityBatch | None:
        """Clips of one length, uint8 frames already at the image size, in one operation; None otherwise.

        Uniform sampling only (random sampling draws per clip, in order); the
        values are those of ``preprocess`` + ``collate`` (the same float32
        ``/255``, ``- mean``, ``/ std``).
        """
        present = [r for r in raws if r is not None]
        if not present or self.sampling != "uniform" or self.image.crop_pct != 1.0:
            return None
        first = present[0]
        if not all(isinstance(r, np.ndarray) and r.dtype == np.uint8 and r.ndim == 4 and r.shape == first.shape
                   for r in present) or first.shape[1:3] != self.image.size or first.shape[-1] != 3 or not first.shape[0]:
            return None
        idx = self._indices(first.shape[0])
        # One pass converts uint8 frames to contiguous float [N, K, 3, H, W]; the rest is in place.
        frames = torch.empty(len(present), len(idx), 3, *self.image.size)
        frames.copy_(torch.from_numpy(np.stack([r[idx] for r in present])).permute(0, 1, 4, 2, 3))
        frames.div_(255.0).sub_(self.image._mean_t).div_(self.image._std_t)
        mask = torch.tensor([r is not None for r in raws], dtype=torch.bool)
        if len(present) == len(raws):
            return ModalityBatch(frames, mask[:, None].expand(-1, len(idx)).contiguous(), {"modality": self.name})
        data = torch.zeros(len(raws), len(idx), 3, *self.image.size)
        data[mask] = frames
        return ModalityBatch(data, mask[:, None].expand(-1, len(idx)).contiguous(), {"modality": self.name})

    def collate(self, values: Sequence[torch.Tensor | None]) -> ModalityBatch:
        """Pad to ``[B, K, 3, H, W]``; uint8 frames from the fast path are normalised here."""
        h, w = self.image.size
        k = max([v.shape[0] for v in values if v is not None] or [self.frames])
        data = torch.zeros(len(values), k, 3, h, w)
        mask = torch.zeros(len(values), k, dtype=torch.bool)
        raw = torch.zeros(len(values), dtype=torch.bool)
        for i, v in enumerate(values):
            if v is not None:
                data[i, : v.shape[0]] = v
                mask[i, : v.shape[0]] = True
                raw[i] = v.dtype == torch.uint8
        if raw.any():
            sel = data[raw]
            data[raw] = (sel / 255.0 - self.image._mean_t) / self.image._std_t * mask[raw][..., None, None, None]
        return ModalityBatch(data, mask, {"modality": self.name})

    def describe(self) -> dict[str, Any]:
        return {**self.image.describe(), "modality": self.name, "frames": self.frames, "sampling": self.sampling,
                "fps": self.fps, "seed": self.seed}
