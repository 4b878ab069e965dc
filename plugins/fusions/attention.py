"""Cross-modal attention fusion: each modality's tokens attend to the others'.

Every modality's tokens are projected to a common size ``dim`` and tagged with
a learned modality embedding. For each modality, its tokens are the queries of
a multi-head attention whose keys and values are the tokens of all *other*
modalities, followed by a feed-forward layer (a pre-norm transformer block with
cross-attention only). Each modality is then mean-pooled over its valid
tokens, and the fused vector is the mean over the modalities present in that
sample.

Masks are respected everywhere: padded positions and missing modalities are
excluded as keys through the key padding mask and excluded from pooling. A
learned "null" key/value is always available, so a query whose sample has no
other modality (or a single-modality model) attends to it instead of
producing the NaN of a softmax over nothing; its weight is also a readable
signal ("found nothing useful in the other modalities").

The attention maps of the last batch are kept, per query modality and head,
for the interpretability axis.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from polymodal.batch import Features
from polymodal.errors import ConfigError
from polymodal.fusion import check_input_dims, check_positive, gather_inputs


class CrossModalBlock(nn.Module):
    """Pre-norm cross-attention + feed-forward block shared by all query modalities."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))

    def forward(self, query: torch.Tensor, context: torch.Tensor, context_pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, weights = self.attn(
            self.norm_q(query), self.norm_kv(context), self.norm_kv(context),
            key_padding_mask=context_pad, need_weights=True, average_attn_weights=False,
        )
        x = query + attended
        return x + self.ff(self.norm_ff(x)), weights


class AttentionFusion(nn.Module):
    """Cross-modal multi-head attention over token sequences.

    :param input_dims: feature size of each modality's tokens.
    :param dim: common model size, the output size.
    :param heads: attention heads (must divide ``dim``).
    :param layers: number of stacked cross-modal blocks.
    :param dropout: dropout inside attention and feed-forward layers.
    """

    name = "attention"

    def __init__(
        self,
        input_dims: Mapping[str, int],
        dim: int = 128,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_dims = check_input_dims(self.name, input_dims)
        self.modalities: tuple[str, ...] = tuple(self.input_dims)
        self.output_dim = check_positive(self.name, "dim", dim)
        self.heads = check_positive(self.name, "heads", heads)
        check_positive(self.name, "layers", layers)
        if dim % heads:
            raise ConfigError(f"fusion {self.name!r}: 'dim' ({dim}) must be divisible by 'heads' ({heads})")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"fusion {self.name!r}: 'dropout' must be in [0, 1), got {dropout!r}")
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in self.input_dims.items()})
        self.modality_embedding = nn.Parameter(torch.randn(len(self.modalities), dim) * 0.02)
        self.null_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList(CrossModalBlock(dim, heads, float(dropout)) for _ in range(layers))
        self.norm_out = nn.LayerNorm(dim)
        self._maps: dict[str, torch.Tensor] = {}
        self._key_modality: dict[str, torch.Tensor] = {}
        self._present: torch.Tensor | None = None

    def forward(self, features: Mapping[str, Features]) -> torch.Tensor:
        inputs = gather_inputs(self.name, self.input_dims, features)
        batch = inputs.batch_size
        zero = torch.zeros((), dtype=self.null_token.dtype, device=self.null_token.device)
        x = {
            m: torch.where(inputs.masks[m].unsqueeze(-1), self.proj[m](inputs.tokens[m]) + self.modality_embedding[i], zero)
            for i, m in enumerate(self.modalities)
        }
        null = self.null_token.expand(batch, 1, -1)
        null_pad = torch.zeros(batch, 1, dtype=torch.bool, device=null.device)
        maps: dict[str, torch.Tensor] = {}
        for block in self.blocks:
            updated = {}
            for m in self.modalities:
                others = [o for o in self.modalities if o != m]
                context = torch.cat([x[o] for o in others] + [null], dim=1)
                pad = torch.cat([~inputs.masks[o] for o in others] + [null_pad], dim=1)
                out, weights = block(x[m], context, pad)
                # Padding/missing query rows are zeroed so they cannot leak into later layers' keys.
                updated[m] = torch.where(inputs.masks[m].unsqueeze(-1), out, zero)
                maps[m] = weights * inputs.masks[m][:, None, :, None]
            x = updated

        pooled = []
        for m in self.modalities:
            mask = inputs.masks[m].unsqueeze(-1).to(x[m].dtype)
            pooled.append(self.norm_out((x[m] * mask).sum(1) / mask.sum(1).clamp_min(1.0)))
        stacked = torch.stack(pooled, dim=1)  # [B, M, D]
        present = inputs.present.unsqueeze(-1).to(stacked.dtype)
        fused = (stacked * present).sum(1) / present.sum(1).clamp_min(1.0)

        self._maps = {m: w.detach() for m, w in maps.items()}
        self._key_modality = {
            m: torch.cat(
                [torch.full((inputs.masks[o].shape[1],), self.modalities.index(o), dtype=torch.long)
                 for o in self.modalities if o != m] + [torch.tensor([-1])]
            )
            for m in self.modalities
        }
        self._present = inputs.present.detach()
        return fused

    def interpretation(self) -> dict[str, torch.Tensor]:
        """Attention of the last batch (last layer).

        ``attention.<m>``: ``[B, heads, T_m, K]`` weights of modality ``m``'s tokens over
        the keys (other modalities' tokens, then the null slot); rows of padded or
        missing query tokens are zero. ``keys.<m>``: ``[K]`` index into ``self.modalities``
        of each key column (``-1`` = null slot). ``modality_attention``: ``[B, M, M + 1]``
        mean attention mass from each query modality (rows) to each modality and, last,
        the null slot, averaged over heads and valid query tokens.
        """
        if not self._maps:
            return {}
        out: dict[str, torch.Tensor] = {}
        n = len(self.modalities)
        assert self._present is not None
        batch = self._present.shape[0]
        summary = torch.zeros(batch, n, n + 1)
        for i, m in enumerate(self.modalities):
            w, keys = self._maps[m], self._key_modality[m]
            out[f"attention.{m}"] = w
            out[f"keys.{m}"] = keys
            per_token = w.mean(dim=1)  # [B, T_m, K]
            valid = per_token.sum(-1) > 0
            count = valid.sum(1).clamp_min(1).to(per_token.dtype)
            mass = per_token.sum(1) / count.unsqueeze(-1)  # [B, K]
            for col in range(-1, n):
                sel = keys == col
                if sel.any():
                    summary[:, i, col if col >= 0 else n] = mass[:, sel].sum(-1).float().cpu()
        out["modality_attention"] = summary
        return out
