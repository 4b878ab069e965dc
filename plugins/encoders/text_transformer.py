"""A small transformer text encoder over token ids (learned positions, pre-norm)."""

from __future__ import annotations

import os

import torch
from torch import nn

from polymodal.batch import Features, ModalityBatch
from polymodal.errors import DataError
from polymodal.model_api import WeightsMixin


class TransformerTextEncoder(WeightsMixin, nn.Module):
    """Token embedding + learned positions -> ``layers`` encoder layers -> ``[B, T, dim]``."""

    def __init__(
        self,
        vocab_size: int,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff_dim: int | None = None,
        max_length: int = 128,
        dropout: float = 0.1,
        pad_id: int = 0,
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.pos = nn.Parameter(torch.randn(1, max_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, ff_dim or 4 * dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.output_dim = dim
        self.max_length = max_length
        self.vocab_size = vocab_size
        self._finish_init(weights, freeze)

    def preprocess_config(self) -> dict:
        return {"max_length": self.max_length}

    def forward(self, batch: ModalityBatch) -> Features:
        ids, mask = batch.data, batch.mask
        if ids.shape[1] > self.max_length:
            raise DataError(f"transformer text encoder: {ids.shape[1]} tokens, more than max_length={self.max_length}")
        # A missing caption (all-false row) would make attention softmax over nothing (NaN);
        # let it attend to its first position and keep its output masked out.
        attend = mask.clone()
        attend[:, 0] |= ~mask.any(1)
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]
        x = self.encoder(x, src_key_padding_mask=~attend)
        return Features(self.norm(x), mask)
