"""Write small WebDataset shards (key.png, key.txt, key.cls) for the tests and the benchmark."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from PIL import Image


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shards(folder: Path, shards: int, per_shard: int, prefix: str = "shard", size: int = 16,
                 compress: bool = False) -> list[Path]:
    """``shards`` tar files of ``per_shard`` samples each; sample k is red (label 0) or blue (label 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(shards):
        path = folder / f"{prefix}-{s:05d}.tar{'.gz' if compress else ''}"
        with tarfile.open(path, "w:gz" if compress else "w") as tar:
            for k in range(per_shard):
                key = f"{s:05d}{k:05d}"
                label = (s * per_shard + k) % 2
                buf = io.BytesIO()
                Image.new("RGB", (size, size), (200, 0, 0) if label == 0 else (0, 0, 200)).save(buf, format="PNG")
                _add(tar, f"{key}.png", buf.getvalue())
                _add(tar, f"{key}.txt", ("a red" if label == 0 else "a blue").encode() + b" square")
                _add(tar, f"{key}.cls", str(label).encode())
        paths.append(path)
    return paths
