"""Gated multimodal unit (Arevalo et al., "Gated Multimodal Units for
Information Fusion", ICLR workshop 2017).

Each modality vector gets its own ``tanh`` projection; a gate computed from
*all* modality vectors decides, per output dimension and per sample, how much
each modality contributes. For two modalities the paper's
``z * h_a + (1 - z) * h_b`` with ``z = sigmoid(W_z [x_a; x_b])`` is exactly a
softmax over two gate logits; the softmax form extends it to any number of
modalities. A missing modality gets its gate masked to zero, so the others
take its share; the gates themselves are the interpretation (which modality
the model relied on, per sample).
"""

from __future__ import annotations

import torch
from torch import nn

from polymodal import ConfigError
from polymodal.batch import Features
from polymodal.fusion import check_input_dims, gather_inputs


class GatedMultimodalUnit(nn.Module):
    """Per-dimension softmax-gated mixture of ``tanh`` modality projections."""

    def __init__(self, input_dims: dict[str, int], output_dim: int = 128) -> None:
        super().__init__()
        if not input_dims:
            raise ConfigError("gmu fusion needs at least one modality in input_dims")
        if output_dim < 1:
            raise ConfigError(f"gmu fusion: output_dim must be >= 1, got {output_dim}")
        self.modalities = sorted(input_dims)
        self.input_dims = check_input_dims("gmu", input_dims)  # sorted, like self.modalities
        self.output_dim = output_dim
        self.hidden = nn.ModuleDict({m: nn.Linear(input_dims[m], output_dim, bias=False) for m in self.modalities})
        self.gate = nn.Linear(sum(input_dims.values()), len(self.modalities) * output_dim, bias=False)
        self._last_gates: torch.Tensor | None = None

    def gates(self, features: dict[str, Features]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gates [B, M, O], hidden [B, M, O])``; gates of present modalities sum to 1 per dimension."""
        pooled = gather_inputs("gmu", self.input_dims, features)  # masked positions zeroed
        vectors = pooled.pooled_all()
        hidden = torch.stack([torch.tanh(self.hidden[m](v)) for m, v in zip(self.modalities, vectors, strict=True)], 1)
        logits = self.gate(torch.cat(vectors, dim=1)).view(-1, len(self.modalities), self.output_dim)
        present = pooled.present.unsqueeze(-1)
        logits = logits.masked_fill(~present, float("-inf"))
        # A sample with no modality at all would softmax over all -inf (NaN):
        # give it zero gates, hence a zero output, instead.
        gates = torch.softmax(logits.masked_fill(~present.any(1, keepdim=True), 0.0), dim=1) * present
        return gates, hidden

    def forward(self, features: dict[str, Features]) -> torch.Tensor:
        gates, hidden = self.gates(features)
        self._last_gates = gates.detach().mean(dim=-1)
        return (gates * hidden).sum(dim=1)

    def interpretation(self) -> dict[str, torch.Tensor]:
        """``gates``: ``[B, M]`` mean gate of each modality (sorted order) per sample of the last batch."""
        return {} if self._last_gates is None else {"gates": self._last_gates}
