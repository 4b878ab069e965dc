"""The MLP classification head shared by the classifier models."""

from __future__ import annotations

from torch import nn

from polymodal.model_api import HeadConfig


def mlp_head(in_dim: int, out_dim: int, head: HeadConfig) -> nn.Module:
    """``layers`` linear layers (hidden size ``hidden``, GELU, dropout) ending in ``out_dim``.

    With ``hidden = 0`` the head is one linear layer whatever ``layers`` says:
    a hidden layer needs a size.
    """
    if head.hidden <= 0 or head.layers <= 1:
        return nn.Sequential(nn.Dropout(head.dropout), nn.Linear(in_dim, out_dim))
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(head.layers - 1):
        mods += [nn.Linear(dim, head.hidden), nn.GELU(), nn.Dropout(head.dropout)]
        dim = head.hidden
    mods.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*mods)
