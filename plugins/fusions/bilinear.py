"""Bilinear (Hadamard-product) fusion: modalities multiply, they do not just add.

Concatenation and weighted averaging followed by a linear head give logits
that are a *sum* of one term per modality, so they cannot learn a label that
depends on an interaction between modalities (an XOR of an image cue and a
text cue, say). Low-rank bilinear pooling (Kim et al., "Hadamard Product for
Low-rank Bilinear Pooling", ICLR 2017) multiplies projected modality vectors
element-wise instead, which puts every pairwise product of features within
reach of a linear head.

Each modality is mean-pooled over its valid tokens, projected to ``dim``,
layer-normalised and squashed: ``h_m = tanh(LN(W_m x_m + b_m))``. The
normalisation matters for learning: a product of two small vectors sits at
a saddle (the gradient of each factor is the other, also small), so with
freshly initialised encoders whose outputs are small, training would wait
many epochs on a plateau before the interaction is found. Normalised, every
factor starts at unit scale. The fused vector is

    prod_m (1 + h_m) - 1

over the modalities present in the sample. Expanded, that is the sum of
every unimodal term ``h_m``, every pairwise product ``h_a * h_b`` and so on
up to the M-way product (the "append a 1" trick of tensor fusion, at the
cost of M projections). So unimodal evidence is kept, and a missing modality
is the factor 1: the sample fuses exactly as if that modality had never been
configured, and a sample with nothing present fuses to zeros.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from polymodal.batch import Features
from polymodal.fusion import check_input_dims, check_positive, gather_inputs


class BilinearFusion(nn.Module):
    """Element-wise product of tanh-projected, mean-pooled modality features.

    :param input_dims: feature size of each modality's tokens.
    :param dim: size of the projections, the output size.
    """

    name = "bilinear"

    def __init__(self, input_dims: Mapping[str, int], dim: int = 128) -> None:
        super().__init__()
        self.input_dims = check_input_dims(self.name, input_dims)
        self.modalities: tuple[str, ...] = tuple(self.input_dims)
        self.output_dim = check_positive(self.name, "dim", dim)
        self.proj = nn.ModuleDict({m: nn.Linear(d, self.output_dim) for m, d in self.input_dims.items()})
        self.norm = nn.ModuleDict({m: nn.LayerNorm(self.output_dim) for m in self.input_dims})
        self._present: torch.Tensor | None = None

    def forward(self, features: Mapping[str, Features]) -> torch.Tensor:
        inputs = gather_inputs(self.name, self.input_dims, features)
        fused: torch.Tensor | None = None
        for i, m in enumerate(self.modalities):
            h = torch.tanh(self.norm[m](self.proj[m](inputs.pooled(m))))
            # A missing modality's projection is tanh(bias): torch.where makes its factor exactly 1.
            factor = torch.where(inputs.present[:, i : i + 1], 1.0 + h, torch.ones((), dtype=h.dtype, device=h.device))
            fused = factor if fused is None else fused * factor
        assert fused is not None  # check_input_dims guarantees at least one modality
        self._present = inputs.present.detach()
        return fused - 1.0

    def interpretation(self) -> dict[str, torch.Tensor]:
        """``presence`` ``[B, M]`` of the last batch; column order ``self.modalities``."""
        return {} if self._present is None else {"presence": self._present}
