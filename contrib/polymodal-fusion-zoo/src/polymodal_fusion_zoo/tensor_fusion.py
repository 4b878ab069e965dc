"""Tensor fusion (Zadeh et al., "Tensor Fusion Network", EMNLP 2017).

Each modality vector is reduced to ``modality_dim`` features and extended with
a constant 1; the fused representation is the flattened outer product of
those extended vectors. Because of the appended 1 the product keeps every
unimodal vector, every bimodal interaction, ... up to the full M-way
interaction, and a *missing* modality (vector 0, still with its 1) cleanly
drops the interactions that involve it while keeping the others. A linear
layer then maps the ``prod(modality_dim + 1)`` features to ``output_dim``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from polymodal.batch import Features
from polymodal.fusion import check_input_dims, gather_inputs
from polymodal import ConfigError

#: Above this many outer-product features, refuse: the linear layer alone would
#: need more than ~ this x output_dim parameters, almost surely a config mistake.
MAX_TENSOR_FEATURES = 1 << 20


def outer_with_ones(vectors: list[torch.Tensor]) -> torch.Tensor:
    """Flattened outer product of ``[v_1; 1] x ... x [v_M; 1]`` per sample, ``[B, prod(d_m + 1)]``."""
    out = None
    for v in vectors:
        ext = torch.cat([v, v.new_ones(v.shape[0], 1)], dim=1)
        out = ext if out is None else torch.einsum("bi,bj->bij", out, ext).reshape(v.shape[0], -1)
    assert out is not None
    return out


class TensorFusion(nn.Module):
    """Outer-product fusion of per-modality vectors; see the module docstring."""

    def __init__(self, input_dims: dict[str, int], modality_dim: int = 16, output_dim: int | None = 128,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not input_dims:
            raise ConfigError("tensor fusion needs at least one modality in input_dims")
        if modality_dim < 1:
            raise ConfigError(f"tensor fusion: modality_dim must be >= 1, got {modality_dim}")
        self.modalities = sorted(input_dims)
        self.input_dims = check_input_dims("tensor", input_dims)  # sorted, like self.modalities
        self.tensor_dim = math.prod(modality_dim + 1 for _ in self.modalities)
        if self.tensor_dim > MAX_TENSOR_FEATURES:
            raise ConfigError(
                f"tensor fusion: {len(self.modalities)} modalities x modality_dim={modality_dim} give "
                f"{self.tensor_dim} outer-product features (limit {MAX_TENSOR_FEATURES}); lower modality_dim "
                "or use fusion 'low-rank-tensor'"
            )
        self.reduce = nn.ModuleDict({m: nn.Linear(input_dims[m], modality_dim) for m in self.modalities})
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(self.tensor_dim, output_dim) if output_dim else None
        self.output_dim = int(output_dim) if output_dim else self.tensor_dim
        self._last_scale: torch.Tensor | None = None

    def fused_tensor(self, features: dict[str, Features]) -> torch.Tensor:
        """The flattened outer product before the output projection, ``[B, tensor_dim]``."""
        pooled = gather_inputs("tensor", self.input_dims, features)  # masked positions zeroed
        reduced = []
        for i, (m, v) in enumerate(zip(self.modalities, pooled.pooled_all(), strict=True)):
            # Zero (not the bias) for a missing modality, so its interactions vanish.
            reduced.append(torch.relu(self.reduce[m](v)) * pooled.present[:, i : i + 1].to(v.dtype))
        self._last_scale = torch.stack([r.detach().norm(dim=1).mean() for r in reduced])
        return outer_with_ones(reduced)

    def forward(self, features: dict[str, Features]) -> torch.Tensor:
        z = self.dropout(self.fused_tensor(features))
        return self.project(z) if self.project is not None else z

    def interpretation(self) -> dict[str, torch.Tensor]:
        """``modality_norm``: mean norm of each reduced modality vector (sorted modality order) in the last batch."""
        if self._last_scale is None:
            return {}
        return {"modality_norm": self._last_scale}
