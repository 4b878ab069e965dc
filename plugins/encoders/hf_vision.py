"""A transformers ``AutoModel`` vision encoder (ViT, DeiT, ConvNeXt, CLIP/SigLIP vision towers ...).

For dual-tower checkpoints (CLIP, SigLIP) only the vision tower is kept.
Preprocessing follows the checkpoint's image processor (size, mean, std,
resample) when one is saved with it, else the model config's ``image_size``.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from polymodal.batch import Features, ModalityBatch
from polymodal.errors import ConfigError
from polymodal.model_api import WeightsMixin
from polymodal_plugins.encoders.hf_text import POOLING, load_auto_model, pool_tokens


class HFVisionEncoder(WeightsMixin, nn.Module):
    """``AutoModel`` over pixels -> patch tokens ``[B, N, D]`` (or one pooled token)."""

    def __init__(
        self,
        model: str,
        pooling: str = "cls",
        trust_remote_code: bool = False,
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLING:
            raise ConfigError(f"hf-vision encoder pooling must be one of {POOLING}, got {pooling!r}")
        full = load_auto_model(model, trust_remote_code, "hf-vision encoder")
        self.model = getattr(full, "vision_model", full)
        self.model_id = model
        self.pooling = pooling
        cfg = getattr(self.model, "config", full.config)
        cfg = getattr(cfg, "vision_config", cfg)
        dim = getattr(cfg, "hidden_size", None) or (getattr(cfg, "hidden_sizes", None) or [None])[-1]
        if dim is None:
            raise ConfigError(f"hf-vision encoder: cannot tell the feature size of {model!r}")
        self.output_dim = int(dim)
        self.image_size = getattr(cfg, "image_size", None)
        self._finish_init(weights, freeze)

    def preprocess_config(self) -> dict[str, Any]:
        try:
            from transformers import AutoImageProcessor

            proc = AutoImageProcessor.from_pretrained(self.model_id).to_dict()
            keys = ("size", "crop_size", "image_mean", "image_std", "resample")
            out = {k: proc[k] for k in keys if proc.get(k) is not None}
            if isinstance(out.get("crop_size"), dict) and "height" in out["crop_size"]:
                out["size"] = out.pop("crop_size")
            return out
        except Exception:  # noqa: BLE001 - no processor saved: fall back to the config
            size = self.image_size
            if isinstance(size, int):
                return {"size": {"height": size, "width": size}}
            return {}

    def forward(self, batch: ModalityBatch) -> Features:
        out = self.model(pixel_values=batch.data)
        hidden = out.last_hidden_state
        if hidden.dim() == 4:  # convolutional backbones: [B, C, H, W]
            hidden = hidden.flatten(2).transpose(1, 2)
        mask = batch.present[:, None].expand(-1, hidden.shape[1])
        return pool_tokens(hidden, mask, self.pooling)
