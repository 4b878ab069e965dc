"""Weighted-average fusion: one vector per modality, mixed by modality weights.

Each modality is mean-pooled and linearly projected to a common size ``dim``;
the fused vector is a convex combination of the projected vectors. The weights
are either fixed from the config (``weights = {image = 2, text = 1}``) or
learned as a softmax over per-modality logits; with ``gating`` each sample
adds its own logit per modality, computed from that modality's features, so
the model can lean on whichever modality is informative for that sample.

Missing modalities are removed from the mixture and the remaining weights are
renormalised, so an absent modality never dilutes or perturbs the output; a
sample with no modality at all fuses to zeros. The weights actually used for
the last batch are kept for the interpretability axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from polymodal.batch import Features
from polymodal.errors import ConfigError, did_you_mean
from polymodal.fusion import check_input_dims, check_positive, gather_inputs


class WeightedFusion(nn.Module):
    """Weighted average of projected modality features.

    :param input_dims: feature size of each modality's tokens.
    :param dim: common projected size, the output size (default: the largest input size).
    :param weights: fixed non-negative weight per modality; ``None`` learns them.
    :param gating: add a per-sample logit per modality from its own features
        (only with learned weights).
    """

    name = "weighted"

    def __init__(
        self,
        input_dims: Mapping[str, int],
        dim: int | None = None,
        weights: Mapping[str, float] | None = None,
        gating: bool = False,
    ) -> None:
        super().__init__()
        self.input_dims = check_input_dims(self.name, input_dims)
        self.modalities: tuple[str, ...] = tuple(self.input_dims)
        self.output_dim = check_positive(self.name, "dim", dim) if dim is not None else max(self.input_dims.values())
        self.proj = nn.ModuleDict({m: nn.Linear(d, self.output_dim) for m, d in self.input_dims.items()})
        if weights is not None:
            if gating:
                raise ConfigError(f"fusion {self.name!r}: 'gating' needs learned weights; remove 'weights' or 'gating'")
            self.register_buffer("fixed_weights", self._check_weights(weights))
            self.logits: nn.Parameter | None = None
        else:
            self.fixed_weights = None
            self.logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.gates = nn.ModuleDict({m: nn.Linear(self.output_dim, 1) for m in self.modalities}) if gating else None
        self._weights: torch.Tensor | None = None

    def _check_weights(self, weights: Mapping[str, float]) -> torch.Tensor:
        if not isinstance(weights, Mapping):
            raise ConfigError(f"fusion {self.name!r}: 'weights' must be a table of modality -> weight, got {weights!r}")
        for key in weights:
            if key not in self.input_dims:
                raise ConfigError(
                    f"fusion {self.name!r}: weights.{key} names no modality of this model"
                    f"{did_you_mean(str(key), self.input_dims)}; modalities: {', '.join(self.modalities)}"
                )
        values = []
        for m in self.modalities:
            if m not in weights:
                raise ConfigError(f"fusion {self.name!r}: weights.{m} is missing; give a weight for every modality")
            w = weights[m]
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ConfigError(f"fusion {self.name!r}: weights.{m} must be a finite number >= 0, got {w!r}")
            values.append(float(w))
        if sum(values) <= 0:
            raise ConfigError(f"fusion {self.name!r}: at least one of 'weights' must be positive")
        return torch.tensor(values)

    def forward(self, features: Mapping[str, Features]) -> torch.Tensor:
        inputs = gather_inputs(self.name, self.input_dims, features)
        projected = torch.stack([self.proj[m](inputs.pooled(m)) for m in self.modalities], dim=1)  # [B, M, D]
        present = inputs.present
        if self.fixed_weights is not None:
            raw = self.fixed_weights.to(projected.dtype).expand(inputs.batch_size, -1) * present
            weights = raw / raw.sum(dim=1, keepdim=True).clamp_min(torch.finfo(raw.dtype).tiny)
        else:
            assert self.logits is not None
            logits = self.logits.to(projected.dtype).expand(inputs.batch_size, -1)
            if self.gates is not None:
                gate = torch.cat([self.gates[m](projected[:, i]) for i, m in enumerate(self.modalities)], dim=1)
                logits = logits + gate
            # A missing modality gets weight exactly 0; a row with nothing present gets all zeros
            # (softmax over all -inf would be NaN, so such rows are filled afterwards).
            logits = logits.masked_fill(~present, float("-inf"))
            any_present = present.any(dim=1, keepdim=True)
            safe = torch.where(any_present, logits, torch.zeros_like(logits))
            weights = torch.softmax(safe, dim=1) * any_present
        # A missing modality's projection is the bias alone; torch.where keeps it out exactly.
        projected = torch.where(present.unsqueeze(-1), projected, torch.zeros((), dtype=projected.dtype))
        self._weights = weights.detach()
        return (weights.unsqueeze(-1) * projected).sum(dim=1)

    def interpretation(self) -> dict[str, torch.Tensor]:
        """``modality_weights`` ``[B, M]`` used for the last batch (rows sum to 1, or 0 when
        nothing was present); column order ``self.modalities``."""
        return {} if self._weights is None else {"modality_weights": self._weights}
