"""A GRU text encoder over token ids, for small from-scratch models.

Sequences are packed, so padding never leaks into the recurrent state and a
sample's features do not depend on how long its batch-mates are.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from polymodal.batch import Features, ModalityBatch
from polymodal.model_api import WeightsMixin


class GRUTextEncoder(WeightsMixin, nn.Module):
    """Embedding -> (bi)GRU -> linear to ``output_dim``; one token per input token."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_dim: int = 64,
        layers: int = 1,
        bidirectional: bool = True,
        output_dim: int = 64,
        dropout: float = 0.0,
        pad_id: int = 0,
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.gru = nn.GRU(embed_dim, hidden_dim, num_layers=layers, batch_first=True,
                          bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.proj = nn.Linear(hidden_dim * (2 if bidirectional else 1), output_dim)
        self.output_dim = output_dim
        self.vocab_size = vocab_size
        self._finish_init(weights, freeze)

    def preprocess_config(self) -> dict:
        return {}

    def forward(self, batch: ModalityBatch) -> Features:
        ids, mask = batch.data, batch.mask
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return Features(self.proj(out), mask)
