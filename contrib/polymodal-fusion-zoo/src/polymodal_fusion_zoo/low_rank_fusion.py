"""Low-rank multimodal fusion (Liu et al., "Efficient Low-rank Multimodal Fusion
with Modality-Specific Factors", ACL 2018).

Tensor fusion applies one weight tensor ``W`` of shape
``[prod(d_m + 1), output_dim]`` to the outer product of the 1-extended modality
vectors. Here ``W`` is a sum of ``rank`` outer products of per-modality factors
``W_m^(r)`` of shape ``[d_m + 1, output_dim]``, and the product is never built:

    h = sum_r w_r * prod_m ([x_m; 1] @ W_m^(r)) + b

which is exactly tensor fusion with that factorised weight, at a cost linear
in the number of modalities. A missing modality contributes ``[0; 1] @ W_m``,
the same interactions-dropping behaviour as tensor fusion.
"""

from __future__ import annotations

import torch
from torch import nn

from polymodal import ConfigError
from polymodal.batch import Features
from polymodal.fusion import check_input_dims, gather_inputs


class LowRankTensorFusion(nn.Module):
    """Tensor fusion with rank-``rank`` modality-specific factors; see the module docstring."""

    def __init__(self, input_dims: dict[str, int], output_dim: int = 128, rank: int = 4) -> None:
        super().__init__()
        if not input_dims:
            raise ConfigError("low-rank-tensor fusion needs at least one modality in input_dims")
        if rank < 1 or output_dim < 1:
            raise ConfigError(f"low-rank-tensor fusion: rank and output_dim must be >= 1, got {rank}, {output_dim}")
        self.modalities = sorted(input_dims)
        self.input_dims = check_input_dims("low-rank-tensor", input_dims)  # sorted, like self.modalities
        self.rank = rank
        self.output_dim = output_dim
        self.factors = nn.ParameterDict({
            m: nn.Parameter(torch.empty(rank, input_dims[m] + 1, output_dim)) for m in self.modalities
        })
        self.rank_weights = nn.Parameter(torch.empty(rank))
        self.bias = nn.Parameter(torch.zeros(output_dim))
        self.reset_parameters()
        self._last_factor_norm: torch.Tensor | None = None

    def reset_parameters(self) -> None:
        # Xavier per factor as in the reference description; the product of M
        # such terms stays O(1) because each factor output is ~unit scale.
        for p in self.factors.values():
            for r in range(self.rank):
                nn.init.xavier_normal_(p.data[r])
        nn.init.xavier_normal_(self.rank_weights.data.unsqueeze(0))

    def full_weight(self) -> torch.Tensor:
        """The equivalent tensor-fusion weight ``[prod(d_m + 1), output_dim]`` (small inputs only: for checking)."""
        total = None
        for m in self.modalities:
            f = self.factors[m]  # [R, d+1, O]
            total = f if total is None else torch.einsum("rio,rjo->rijo", total, f).reshape(self.rank, -1, self.output_dim)
        assert total is not None
        return torch.einsum("r,rio->io", self.rank_weights, total)

    def forward(self, features: dict[str, Features]) -> torch.Tensor:
        pooled = gather_inputs("low-rank-tensor", self.input_dims, features)  # masked positions zeroed
        product = None
        norms = []
        for m, v in zip(self.modalities, pooled.pooled_all(), strict=True):
            ext = torch.cat([v, v.new_ones(v.shape[0], 1)], dim=1)
            part = torch.einsum("bi,rio->bro", ext, self.factors[m])
            norms.append(part.detach().norm(dim=-1).mean())
            product = part if product is None else product * part
        assert product is not None
        self._last_factor_norm = torch.stack(norms)
        return torch.einsum("r,bro->bo", self.rank_weights, product) + self.bias

    def interpretation(self) -> dict[str, torch.Tensor]:
        """``rank_weights`` and ``modality_factor_norm`` (mean norm of each modality's factor output, last batch)."""
        out = {"rank_weights": self.rank_weights.detach()}
        if self._last_factor_norm is not None:
            out["modality_factor_norm"] = self._last_factor_norm
        return out
