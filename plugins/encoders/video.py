"""Video: any registered image encoder applied per frame, plus temporal pooling.

Frames are encoded as one big batch ``[B*K, 3, H, W]``; each frame's pooled
feature gets a learned temporal position, then ``pooling`` decides the
output tokens: ``none`` keeps one token per frame, ``mean`` averages real
frames, ``attention`` learns which frames matter (a learned query attends
over frames; the weights are kept in ``last_attention`` for inspection).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from polymodal.batch import Features, ModalityBatch
from polymodal.errors import ConfigError, DataError
from polymodal.model_api import WeightsMixin

POOLING = ("mean", "attention", "none")


class VideoEncoder(WeightsMixin, nn.Module):
    """Per-frame image encoder + temporal pooling; ``output_dim`` is the frame encoder's."""

    def __init__(
        self,
        frame_encoder: str = "cnn",
        frame_params: Mapping[str, Any] | None = None,
        pooling: str = "mean",
        max_frames: int = 64,
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLING:
            raise ConfigError(f"video encoder pooling must be one of {POOLING}, got {pooling!r}")
        if frame_encoder == "video":
            raise ConfigError("video encoder: frame_encoder cannot be 'video' itself")
        from polymodal import get_plugins

        self.frame_encoder_name = frame_encoder
        self.frames = get_plugins().build("encoders", frame_encoder, **dict(frame_params or {}))
        dim = int(self.frames.output_dim)
        self.time = nn.Parameter(torch.zeros(1, max_frames, dim))
        self.query = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5) if pooling == "attention" else None
        self.pooling = pooling
        self.max_frames = max_frames
        self.output_dim = dim
        self.last_attention: torch.Tensor | None = None
        self._finish_init(weights, freeze)

    def preprocess_config(self) -> dict[str, Any]:
        cfg = getattr(self.frames, "preprocess_config", None)
        return {"frame": dict(cfg()) if callable(cfg) else {}}

    def forward(self, batch: ModalityBatch) -> Features:
        x, mask = batch.data, batch.mask  # [B, K, 3, H, W], [B, K]
        if x.dim() != 5:
            raise DataError(f"video encoder expects [B, K, 3, H, W] frames, got {tuple(x.shape)}")
        b, k = x.shape[:2]
        if k > self.max_frames:
            raise DataError(f"video encoder: {k} frames, more than max_frames={self.max_frames}")
        frame_batch = ModalityBatch(x.flatten(0, 1), mask.flatten(), {})
        per_frame = self.frames(frame_batch).pooled().view(b, k, -1) + self.time[:, :k]
        if self.pooling == "none":
            return Features(per_frame, mask)
        present = mask.any(1, keepdim=True)
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).to(per_frame.dtype)
            pooled = (per_frame * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1.0)
        else:
            scores = (per_frame @ self.query.transpose(1, 2)).squeeze(-1)  # [B, K]
            scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores.masked_fill(~present, 0.0), dim=1)
            self.last_attention = weights.detach()
            pooled = (weights.unsqueeze(-1) * per_frame).sum(1, keepdim=True)
        return Features(pooled * present.unsqueeze(-1), present)
