"""A differentiable twin of a transformers image processor: pixels in [0, 1] -> ``pixel_values`` in torch.

transformers' image processors leave the autograd graph (numpy/PIL, or
torchvision under ``no_grad``), so a gradient of the answer's likelihood
never reaches the pixels. :class:`PixelPath` reads the processor's declared
preprocessing facts (its resize target, centre crop, ``image_mean`` /
``image_std`` and, for flattened-patch processors such as Qwen2-VL's,
``patch_size`` / ``temporal_patch_size`` / ``merge_size``) and does the same
arithmetic in torch. Pixel attacks then act on a tensor in [0, 1] at the
processor's input size, before the normalisation, exactly where a
corruption of the image file would act.

Nothing here names an architecture: a processor whose facts this cannot
read (image tiling, pan-and-scan, ...) gets no path (``from_processor``
says why), and :func:`PixelPath.max_abs_diff` measures the twin against
the processor itself, so the plugin refuses a twin that disagrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import torch
import torch.nn.functional as F


#: PIL resampling codes -> interpolate modes (what torchvision does for each, antialiased).
_MODES = {0: "nearest-exact", 2: "bilinear", 3: "bicubic"}


def _size(value: Any) -> dict[str, int]:
    """A processor's size fact as a plain dict (dicts in v4, ``SizeDict`` objects in v5)."""
    if value is None:
        return {}
    if isinstance(value, int):
        return {"height": value, "width": value}
    items = value.items() if hasattr(value, "items") else vars(value).items()
    return {k: int(v) for k, v in items if v is not None}


@attrs.frozen
class PixelPath:
    """The processor's preprocessing after rescaling, as facts, with a torch implementation."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalize: bool
    #: ``{"height", "width"}`` (fixed), ``{"shortest_edge"}`` (aspect kept) or pixel budgets for patch grids.
    size: dict[str, int]
    crop: tuple[int, int] | None
    #: Flattened patch layout (``[sum(t*h*w), C*temporal*patch*patch]`` plus ``image_grid_thw``) when set.
    patch: int | None = None
    temporal: int = 1
    merge: int = 1
    #: ``torch.nn.functional.interpolate`` mode of the processor's ``resample`` (PIL codes 0, 2, 3).
    mode: str = "bicubic"

    @classmethod
    def from_processor(cls, image_processor: Any) -> PixelPath | str:
        """The path for ``image_processor``, or a one-line reason why its facts do not describe one."""
        ip = image_processor
        get = lambda k, d=None: getattr(ip, k, d)  # noqa: E731
        for flag in ("do_image_splitting", "do_pan_and_scan", "image_grid_pinpoints"):
            if get(flag):
                return f"{type(ip).__name__} declares {flag}, which the differentiable pixel path does not follow"
        mean, std = get("image_mean"), get("image_std")
        normalize = bool(get("do_normalize", True))
        if normalize and (mean is None or std is None):
            return f"{type(ip).__name__} normalises but declares no image_mean/image_std"
        mean = tuple(float(m) for m in (mean if isinstance(mean, Sequence) else [mean] * 3)) if mean is not None else (0.0,) * 3
        std = tuple(float(s) for s in (std if isinstance(std, Sequence) else [std] * 3)) if std is not None else (1.0,) * 3
        size = _size(get("size")) if get("do_resize", True) else {}
        crop_fact = _size(get("crop_size")) if get("do_center_crop", False) else {}
        crop = (crop_fact["height"], crop_fact["width"]) if crop_fact else None
        resample = int(getattr(get("resample", 3), "value", get("resample", 3)) or 0)
        if resample not in _MODES:
            return f"{type(ip).__name__} resamples with PIL filter {resample}, which the pixel path does not follow"
        mode = _MODES[resample]
        patch = get("patch_size") if get("temporal_patch_size") else None
        if patch is not None:
            return cls(mean, std, normalize, size, crop, int(patch), int(get("temporal_patch_size")),
                       int(get("merge_size", 1) or 1), mode)
        if size and not ({"height", "width"} <= size.keys() or "shortest_edge" in size):
            return f"{type(ip).__name__} declares a resize target {size} the pixel path does not read"
        return cls(mean, std, normalize, size, crop, mode=mode)

    # -- sizes ---------------------------------------------------------------------------------
    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the processor resizes an ``height x width`` image to before normalising."""
        if self.patch is not None:
            return self._grid_size(height, width)
        if {"height", "width"} <= self.size.keys():
            h, w = self.size["height"], self.size["width"]
        elif "shortest_edge" in self.size:
            short, long_ = sorted((height, width))
            edge = self.size["shortest_edge"]
            other = int(edge * long_ / short)
            h, w = (edge, other) if height <= width else (other, edge)
        else:
            h, w = height, width
        return self.crop or (h, w)

    def _grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Nearest size of whole merged patches, keeping the aspect ratio, inside the pixel budget."""
        factor = self.patch * self.merge
        lo = self.size.get("shortest_edge", self.size.get("min_pixels", factor * factor))
        hi = self.size.get("longest_edge", self.size.get("max_pixels", 1 << 30))
        h = max(factor, round(height / factor) * factor)
        w = max(factor, round(width / factor) * factor)
        if h * w > hi:
            beta = math.sqrt(height * width / hi)
            h, w = (max(factor, math.floor(height / beta / factor) * factor),
                    max(factor, math.floor(width / beta / factor) * factor))
        elif h * w < lo:
            beta = math.sqrt(lo / (height * width))
            h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
        return h, w

    def box(self, height: int, width: int) -> tuple[float, float, float, float]:
        """The part of an ``height x width`` image the processor keeps, as fractions ``(top, left, bottom, right)``.

        The whole image unless a centre crop cuts it (then the patch grid, and
        any map drawn on it, covers only the crop).
        """
        th, tw = self.input_size(height, width)
        if self.patch is not None or self.crop is None:
            return (0.0, 0.0, 1.0, 1.0)
        rh, rw = attrs.evolve(self, crop=None).input_size(height, width)
        top, left = (rh - th) // 2, (rw - tw) // 2
        return (max(top, 0) / rh, max(left, 0) / rw, min(top + th, rh) / rh, min(left + tw, rw) / rw)

    def resize(self, image: torch.Tensor) -> torch.Tensor:
        """``[3, h, w]`` in [0, 1] -> the processor's input size (bicubic, antialiased; differentiable)."""
        h, w = image.shape[-2:]
        th, tw = self.input_size(h, w)
        if self.patch is None and self.crop is not None:  # resize first, then a centre crop
            rh, rw = attrs.evolve(self, crop=None).input_size(h, w)
        else:
            rh, rw = th, tw
        if (rh, rw) != (h, w):
            smooth = {"antialias": True, "align_corners": False} if not self.mode.startswith("nearest") else {}
            image = F.interpolate(image[None], size=(rh, rw), mode=self.mode, **smooth)[0]
        if (th, tw) != (rh, rw):
            top, left = (rh - th) // 2, (rw - tw) // 2
            image = image[:, top:top + th, left:left + tw]
        return image

    # -- values --------------------------------------------------------------------------------
    def values(self, images: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The processor's outputs for images already at their input size: ``pixel_values`` (and the grid)."""
        normed = [self._normalise(x) for x in images]
        if self.patch is None:
            shapes = {tuple(x.shape) for x in normed}
            if len(shapes) > 1:
                raise ValueError(f"images of different sizes {sorted(shapes)} cannot share one pixel_values tensor")
            return {"pixel_values": torch.stack(normed)}
        flat, grids = zip(*(self._patches(x) for x in normed), strict=True)
        return {"pixel_values": torch.cat(flat), "image_grid_thw": torch.tensor(grids, dtype=torch.long)}

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if not self.normalize:
            return x
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        return (x - mean) / std

    def _patches(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """One image as rows of ``C x temporal x patch x patch`` values, merge windows kept together.

        A still image fills every temporal slot with the same frame; rows run
        over merge windows (row-major), and inside each window over its
        ``merge x merge`` patches, which is the order the vision tower's
        patch merger expects.
        """
        c, h, w = x.shape
        p, m, t = self.patch, self.merge, self.temporal
        gh, gw = h // p, w // p
        grid = x.reshape(c, gh // m, m, p, gw // m, m, p).permute(1, 4, 2, 5, 0, 3, 6)  # [gh/m, gw/m, m, m, c, p, p]
        grid = grid.unsqueeze(5).expand(*grid.shape[:5], t, p, p)  # the temporal copies sit between c and the pixels
        return grid.reshape(gh * gw, c * t * p * p), (1, gh, gw)

    @classmethod
    def checked(cls, image_processor: Any, tolerance: float = 1e-4) -> PixelPath | str:
        """:meth:`from_processor`, then measured against the processor on a probe image; a reason when off."""
        path = cls.from_processor(image_processor)
        if isinstance(path, str):
            return path
        raw = torch.rand(3, 37, 29, generator=torch.Generator().manual_seed(0))
        name = type(image_processor).__name__
        try:
            diff = path.max_abs_diff(image_processor, [path.resize(raw)])
            # and the resize itself: the processor from the raw probe (a PIL-based resize would not agree)
            ref = image_processor(images=[raw], return_tensors="pt", do_rescale=False)["pixel_values"]
            diff = max(diff, float((path.values([path.resize(raw)])["pixel_values"] - ref.float()).abs().max()))
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            return f"{name} refused the pixel-path check: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
        if not diff <= tolerance:
            return f"the torch pixel path differs from {name} by {diff:.2g} (more than {tolerance:g}) on a probe image"
        return path

    def max_abs_diff(self, image_processor: Any, images: Sequence[torch.Tensor]) -> float:
        """Largest |difference| between :meth:`values` and the processor's own ``pixel_values`` on ``images``
        (already at their input size, values in [0, 1])."""
        ours = self.values(images)
        ref = image_processor(images=[x.detach().cpu() for x in images], return_tensors="pt", do_rescale=False,
                              do_resize=False, do_center_crop=False)
        diff = float((ours["pixel_values"].float() - ref["pixel_values"].float()).abs().max())
        if "image_grid_thw" in ref and not torch.equal(ref["image_grid_thw"].long(), ours.get("image_grid_thw")):
            return math.inf
        return diff
