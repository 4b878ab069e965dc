"""``depth-cnn``: a small CNN over depth plus a validity channel.

A depth of exactly 0 is "no reading", not "touching the sensor"; giving the
network that mask as a second channel lets it tell holes from near objects.
"""

from __future__ import annotations

import torch
from torch import nn

from polymodal.batch import Features, ModalityBatch


class DepthEncoder(nn.Module):
    """Conv blocks halving the resolution, then a 1x1 projection to ``output_dim`` tokens."""

    def __init__(self, width: int = 16, depth: int = 3, output_dim: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 2
        for i in range(depth):
            layers += [nn.Conv2d(channels, width, 3, stride=1 if i == 0 else 2, padding=1), nn.GroupNorm(1, width),
                       nn.GELU()]
            channels = width
        self.body = nn.Sequential(*layers)
        self.proj = nn.Conv2d(width, output_dim, 1)
        self.output_dim = int(output_dim)

    def forward(self, batch: ModalityBatch) -> Features:
        depth = batch.data
        x = torch.cat([depth, (depth > 0).to(depth.dtype)], dim=1)
        tokens = self.proj(self.body(x)).flatten(2).transpose(1, 2)
        return Features(tokens, batch.present[:, None].expand(-1, tokens.shape[1]))
