"""Any timm architecture as an encoder, with spatial tokens.

``pretrained=True`` uses whatever timm can find (hub cache, or a local file
through ``pretrained_file``, passed as ``pretrained_cfg_overlay={"file": ...}``).
The classifier is removed (``num_classes=0``). ``tokens="spatial"`` returns
the feature map cells (CNNs) or all patch/prefix tokens (ViTs);
``tokens="pooled"`` returns timm's own pooled pre-logits feature as one token.
Preprocessing follows ``timm.data.resolve_data_config`` for the model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from polymodal.batch import Features, ModalityBatch
from polymodal.errors import ConfigError
from polymodal.model_api import WeightsMixin


class TimmEncoder(WeightsMixin, nn.Module):
    """A timm model (by name) returning token features."""

    def __init__(
        self,
        model_name: str = "resnet18",
        pretrained: bool = False,
        pretrained_file: str | os.PathLike[str] | None = None,
        tokens: str = "spatial",
        model_kwargs: Mapping[str, Any] | None = None,
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        import timm

        if tokens not in ("spatial", "pooled"):
            raise ConfigError(f"timm encoder tokens must be 'spatial' or 'pooled', got {tokens!r}")
        kwargs = dict(model_kwargs or {})
        if pretrained_file is not None:
            if not os.path.isfile(pretrained_file):
                raise ConfigError(f"timm encoder: pretrained_file {str(pretrained_file)!r} does not exist")
            pretrained = True
            kwargs["pretrained_cfg_overlay"] = {"file": os.fspath(pretrained_file)}
        try:
            self.model = timm.create_model(model_name, pretrained=pretrained, num_classes=0, **kwargs)
        except RuntimeError as exc:
            if "Unknown model" in str(exc):
                from polymodal.errors import did_you_mean

                raise ConfigError(f"timm encoder: unknown architecture {model_name!r}"
                                  f"{did_you_mean(model_name, timm.list_models())}") from None
            raise ConfigError(f"timm encoder {model_name!r}: cannot create model: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - download/offline/file errors surface here
            raise ConfigError(f"timm encoder {model_name!r}: cannot create model "
                              f"(pretrained={pretrained}): {type(exc).__name__}: {exc}") from None
        self.model_name = model_name
        self.tokens = tokens
        self.output_dim = int(self.model.num_features)
        self._finish_init(weights, freeze)

    def preprocess_config(self) -> dict[str, Any]:
        from timm.data import resolve_data_config

        cfg = resolve_data_config({}, model=self.model)
        # ViT-style models built with img_size=... keep their original pretrained_cfg
        # input size; the patch embedding knows the size the model really takes.
        img_size = getattr(getattr(self.model, "patch_embed", None), "img_size", None)
        if img_size is not None:
            cfg["input_size"] = (cfg["input_size"][0], *tuple(img_size))
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}

    def forward(self, batch: ModalityBatch) -> Features:
        feats = self.model.forward_features(batch.data)
        if self.tokens == "pooled":
            tokens = self.model.forward_head(feats, pre_logits=True).unsqueeze(1)
        elif feats.dim() == 4:  # [B, C, H, W] unless the model is channels-last
            tokens = feats.flatten(2).transpose(1, 2) if feats.shape[1] == self.output_dim else feats.flatten(1, 2)
        else:
            tokens = feats
        mask = batch.present[:, None].expand(-1, tokens.shape[1])
        return Features(tokens, mask)
