"""Image-folder feature extraction for FID/KID: InceptionV3 weights from a local file, or any registered encoder.

Network access is never assumed: InceptionV3 weights must be a local
``.safetensors`` file (or a ``torch.save`` state dict, loaded with
``weights_only=True``); otherwise ``extractor`` names a registered image
encoder whose pooled features are used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from polymodal.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def build_feature_extractor(extractor: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable mapping ``[B, 3, H, W]`` images in [0, 1] to ``[B, D]`` features."""
    path = Path(extractor)
    if path.suffix in (".safetensors", ".pt", ".pth", ".bin") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{path}: InceptionV3 weights file not found")
        import timm

        model = timm.create_model("inception_v3", pretrained=False, num_classes=0)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError (not a zip): refuse either way
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                raise DataError(f"{path}: not a weights file torch loads safely (weights_only=True refused it: "
                                f"{first}); use a .safetensors file") from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise DataError(f"{path}: not InceptionV3 weights (missing {len(missing)} tensors, e.g. {missing[0]!r})")
        model.eval()
        mean = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)
        return lambda x: model((x - mean) / mean)
    import polymodal
    from polymodal.batch import ModalityBatch

    encoder = polymodal.get_plugins().build("encoders", extractor)
    encoder.eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        feats = encoder(ModalityBatch(data=x, mask=torch.ones(x.shape[0], dtype=torch.bool)))
        return feats.pooled()

    return run


def extract_folder(folder: str | Path, extractor: str, image_size: int = 299, batch_size: int = 32) -> np.ndarray:
    """Features ``[N, D]`` (float64) of every image directly inside ``folder``, in name order."""
    from PIL import Image

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of images")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and p.resolve().is_relative_to(root.resolve()))
    if not files:
        raise DataError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)})")
    fn = build_feature_extractor(extractor)
    out = []
    for lo in range(0, len(files), batch_size):
        batch = []
        for f in files[lo : lo + batch_size]:
            try:
                with Image.open(f) as im:
                    im = im.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                    batch.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1))
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise DataError(f"{f}: cannot read image: {exc}") from None
        with torch.no_grad():
            out.append(fn(torch.stack(batch)).double().numpy())
        print(f"\r{root.name}: {min(lo + batch_size, len(files))}/{len(files)} images", end="", file=sys.stderr)
    print(file=sys.stderr)
    return np.concatenate(out)
