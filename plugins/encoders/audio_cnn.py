"""A small 1-D CNN over MFCC / log-mel frames ``[B, T, F]`` -> ``[B, T', D]``.

The encoder states which features it expects (``preprocess_config``), so the
audio modality computes exactly those.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.batch import Features, ModalityBatch
from polymodal.errors import DataError
from polymodal.model_api import WeightsMixin


class AudioCNNEncoder(WeightsMixin, nn.Module):
    """Per-frame normalisation, then ``depth`` conv blocks (stride 2 after the first) over time."""

    def __init__(
        self,
        in_features: int = 32,
        features: str = "log-mel",
        width: int = 64,
        depth: int = 3,
        output_dim: int = 64,
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_features)
        layers, c = [], in_features
        self.strides = []
        for i in range(depth):
            stride = 1 if i == 0 else 2
            layers += [nn.Conv1d(c, width, 3, stride=stride, padding=1), nn.GroupNorm(min(8, width), width), nn.GELU()]
            self.strides.append(stride)
            c = width
        self.body = nn.Sequential(*layers)
        self.proj = nn.Linear(width, output_dim)
        self.output_dim = output_dim
        self.in_features = in_features
        self.features = features
        self._finish_init(weights, freeze)

    def preprocess_config(self) -> dict[str, Any]:
        key = {"log-mel": "n_mels", "mfcc": "n_mfcc"}.get(self.features)
        return {"audio": {"features": self.features, **({key: self.in_features} if key else {})}}

    def forward(self, batch: ModalityBatch) -> Features:
        x, mask = batch.data, batch.mask
        if x.shape[-1] != self.in_features:
            raise DataError(f"audio encoder expects {self.in_features} features per frame, got {x.shape[-1]}")
        x = self.norm(x) * mask.unsqueeze(-1)
        h = self.body(x.transpose(1, 2))  # [B, C, T']
        m = mask.float().unsqueeze(1)
        for stride in self.strides:  # follow the time downsampling for the mask
            if stride > 1:
                m = F.max_pool1d(m, 3, stride=stride, padding=1)
        return Features(self.proj(h.transpose(1, 2)), m.squeeze(1)[:, : h.shape[-1]] > 0.5)
