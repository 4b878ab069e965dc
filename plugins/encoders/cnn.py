"""A compact CNN image encoder for from-scratch training, with spatial tokens.

GroupNorm rather than BatchNorm: a sample's features never depend on the rest
of its batch, so evaluation with missing images, sharded data or batch size 1
gives the same features. Tokens are the final feature map's cells
(``[B, h*w, D]``) so attention fusions can attend over space.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from polymodal.batch import Features, ModalityBatch
from polymodal.model_api import WeightsMixin


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(min(8, c_out), c_out),
        nn.GELU(),
    )


class CNNEncoder(WeightsMixin, nn.Module):
    """``depth`` conv blocks (each halving resolution after the first), then a 1x1 projection."""

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 32,
        depth: int = 3,
        output_dim: int = 64,
        image_size: int | None = None,
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        layers, c = [], in_channels
        for i in range(depth):
            c_out = width * 2 ** min(i, 2)
            layers.append(_block(c, c_out, 1 if i == 0 else 2))
            c = c_out
        self.body = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c, output_dim, 1)
        self.output_dim = output_dim
        self.image_size = image_size
        self.in_channels = in_channels
        self._finish_init(weights, freeze)

    def preprocess_config(self) -> dict[str, Any]:
        return {} if self.image_size is None else {"input_size": (self.in_channels, self.image_size, self.image_size)}

    def forward(self, batch: ModalityBatch) -> Features:
        x = self.proj(self.body(batch.data))  # [B, D, h, w]
        tokens = x.flatten(2).transpose(1, 2)
        mask = batch.present[:, None].expand(-1, tokens.shape[1])
        return Features(tokens, mask)
