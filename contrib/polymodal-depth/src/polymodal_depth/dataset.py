"""``depth-shapes``: procedural depth maps of one shape at a distance, with a text.

Each sample is a ``[size, size]`` depth map in metres: a slanted background
wall at about 9 m and a circle, square or triangle whose distance is drawn
from 1.5..7.5 m (farther shapes look smaller). The paired text names the
distance band (near, middle, far) but never the shape, so the two
modalities carry different information. Targets: ``shape`` (class) and
``distance`` (metres). Generated in memory from ``seed`` and the split, so
runs repeat and nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal import DataError

SHAPES = ("circle", "square", "triangle")
SPLITS = {"train": 0, "val": 1, "test": 2}
TEMPLATES = ("an object in the {} distance", "something {} to the sensor", "a {} target")
BANDS = ((3.5, "near"), (5.5, "middle"), (float("inf"), "far"))


def band(distance: float) -> str:
    return next(name for limit, name in BANDS if distance < limit)


def render(shape: int, distance: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """One depth map in metres: the shape at ``distance`` in front of a slanted wall."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    wall = 9.0 + 0.5 * (xx / size) - 0.3 * (yy / size)
    radius = size * (0.12 + 0.5 / distance)
    cy, cx = rng.uniform(radius, size - radius, 2) if radius < size / 2 else (size / 2, size / 2)
    dy, dx = yy - cy, xx - cx
    if shape == 0:
        inside = dy ** 2 + dx ** 2 <= radius ** 2
    elif shape == 1:
        inside = (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    else:
        inside = (dy <= radius * 0.8) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.6)
    depth = np.where(inside, distance, wall).astype(np.float32)
    return depth * (1.0 + 0.005 * rng.standard_normal(depth.shape).astype(np.float32))


class DepthShapes:
    """The map-style dataset (see module docs)."""

    name = "depth-shapes"
    fields = {"depth": "depth", "text": "text"}
    targets = ["shape", "distance"]
    class_names = {"shape": list(SHAPES)}

    def __init__(self, split: str = "train", num_samples: int = 192, size: int = 32, seed: int = 0,
                 root: Any = None) -> None:
        if split not in SPLITS:
            raise DataError(f"dataset 'depth-shapes': no split {split!r}; splits: {', '.join(SPLITS)}")
        if num_samples < 1 or size < 8:
            raise DataError("dataset 'depth-shapes': num_samples must be >= 1 and size >= 8")
        self.split, self.size, self.root = split, int(size), None
        rng = np.random.default_rng([int(seed), SPLITS[split]])
        self._shapes = rng.integers(0, len(SHAPES), num_samples)
        self._distances = rng.uniform(1.5, 7.5, num_samples).astype(np.float32)
        self._texts = [TEMPLATES[int(t)].format(band(float(d)))
                       for t, d in zip(rng.integers(0, len(TEMPLATES), num_samples), self._distances, strict=True)]
        self._seeds = rng.integers(0, 2**31, num_samples)

    def __len__(self) -> int:
        return len(self._shapes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = np.random.default_rng(int(self._seeds[i]))
        return {"id": f"{self.split}-{i}", "depth": render(int(self._shapes[i]), float(self._distances[i]), self.size, rng),
                "text": self._texts[i], "shape": int(self._shapes[i]), "distance": float(self._distances[i])}

    def texts(self, field: str) -> list[str]:
        if field != "text":
            raise DataError(f"dataset 'depth-shapes' has no text field {field!r}")
        return list(self._texts)

    def write_files(self, folder: Any, *, png_every: int = 2) -> list[dict[str, Any]]:
        """Write the samples as depth files (``.npy`` metres, every ``png_every``-th a 16-bit PNG in mm)
        plus their texts and targets; returns the manifest rows (for the built-in ``manifest`` dataset)."""
        from pathlib import Path

        from PIL import Image

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(len(self)):
            item = self[i]
            if png_every and i % png_every == 0:
                rel = f"{item['id']}.png"
                Image.fromarray(np.round(item["depth"] * 1000).astype(np.uint16)).save(folder / rel)
            else:
                rel = f"{item['id']}.npy"
                np.save(folder / rel, item["depth"])
            rows.append({"id": item["id"], "depth": rel, "text": item["text"], "shape": item["shape"],
                         "distance": item["distance"]})
        return rows
