"""Concatenation fusion: the simplest strong baseline.

Each modality is mean-pooled over its valid tokens and the pooled vectors are
concatenated in a fixed (sorted) modality order. A missing modality
contributes an exact zero block; with ``missing_indicator`` the fusion also
appends one 0/1 flag per modality, so a head can tell "absent" from "features
that happen to be near zero". An optional linear projection (``dim``) maps the
concatenation to a fixed size.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from polymodal.batch import Features
from polymodal.fusion import check_input_dims, check_positive, gather_inputs


class ConcatFusion(nn.Module):
    """Concatenate pooled modality features, optionally projected to ``dim``.

    :param input_dims: feature size of each modality's tokens.
    :param dim: output size of an optional linear projection (``None``: no projection).
    :param missing_indicator: append a 0/1 presence flag per modality.
    :param activation: apply GELU after the projection (ignored without ``dim``).
    """

    name = "concat"

    def __init__(
        self,
        input_dims: Mapping[str, int],
        dim: int | None = None,
        missing_indicator: bool = False,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.input_dims = check_input_dims(self.name, input_dims)
        self.modalities: tuple[str, ...] = tuple(self.input_dims)
        self.missing_indicator = bool(missing_indicator)
        concat_dim = sum(self.input_dims.values()) + (len(self.modalities) if self.missing_indicator else 0)
        if dim is None:
            self.proj: nn.Module | None = None
            self.output_dim = concat_dim
        else:
            self.output_dim = check_positive(self.name, "dim", dim)
            layers: list[nn.Module] = [nn.Linear(concat_dim, self.output_dim)]
            if activation:
                layers.append(nn.GELU())
            self.proj = nn.Sequential(*layers)
        self._present: torch.Tensor | None = None

    def forward(self, features: Mapping[str, Features]) -> torch.Tensor:
        inputs = gather_inputs(self.name, self.input_dims, features)
        parts = [inputs.pooled(m) for m in self.modalities]
        if self.missing_indicator:
            parts.append(inputs.present.to(parts[0].dtype))
        fused = torch.cat(parts, dim=-1)
        self._present = inputs.present.detach()
        return fused if self.proj is None else self.proj(fused)

    def interpretation(self) -> dict[str, torch.Tensor]:
        """``presence`` ``[B, M]`` of the last batch and, when projected, the
        per-modality share of the projection's weight norm ``modality_weight_norm`` ``[M]``
        (how much of the learned map reads each modality). Column order: ``self.modalities``.
        """
        out: dict[str, torch.Tensor] = {}
        if self._present is not None:
            out["presence"] = self._present
        if self.proj is not None:
            weight = self.proj[0].weight.detach()
            norms, start = [], 0
            for m in self.modalities:
                width = self.input_dims[m]
                norms.append(weight[:, start:start + width].norm())
                start += width
            total = torch.stack(norms)
            out["modality_weight_norm"] = total / total.sum().clamp_min(1e-12)
        return out
