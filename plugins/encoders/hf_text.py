"""A transformers ``AutoModel`` text encoder from a hub id or a local directory.

Remote code stays off unless ``trust_remote_code=True``. The text modality
uses the same checkpoint's tokenizer (``preprocess_config`` names it).
``pooling``: ``cls`` (first token), ``mean`` (masked mean) or ``tokens``
(every token, for attention fusions).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from polymodal.batch import Features, ModalityBatch
from polymodal.errors import ConfigError
from polymodal.model_api import WeightsMixin

POOLING = ("cls", "mean", "tokens")


def load_auto_model(model: str, trust_remote_code: bool, what: str) -> Any:
    """``AutoModel.from_pretrained`` with a platform error naming the checkpoint."""
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(model, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - hub, offline and format errors all surface here
        raise ConfigError(
            f"{what}: cannot load {model!r} (a hub id available offline, or a local directory saved with "
            f"save_pretrained): {type(exc).__name__}: {exc}"
        ) from None


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> Features:
    """Apply ``cls`` / ``mean`` / ``tokens`` pooling; a missing input stays masked out."""
    present = mask.any(1, keepdim=True)
    if pooling == "tokens":
        return Features(hidden, mask)
    if pooling == "cls":
        return Features(hidden[:, :1] * present.unsqueeze(-1), present)
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1.0)
    return Features(pooled, present)


class HFTextEncoder(WeightsMixin, nn.Module):
    """``AutoModel`` over token ids -> ``[B, T, D]`` (or one pooled token)."""

    def __init__(
        self,
        model: str,
        pooling: str = "cls",
        max_length: int | None = None,
        trust_remote_code: bool = False,
        freeze: bool = False,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLING:
            raise ConfigError(f"hf-text encoder pooling must be one of {POOLING}, got {pooling!r}")
        self.model = load_auto_model(model, trust_remote_code, "hf-text encoder")
        self.model_id = model
        self.pooling = pooling
        cfg = self.model.config
        self.max_length = max_length or getattr(cfg, "max_position_embeddings", None) or 512
        self.output_dim = int(getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model"))
        self.trust_remote_code = trust_remote_code
        self._finish_init(weights, freeze)

    def preprocess_config(self) -> dict[str, Any]:
        return {"tokenizer": self.model_id, "max_length": int(self.max_length)}

    def forward(self, batch: ModalityBatch) -> Features:
        ids, mask = batch.data, batch.mask
        attend = mask.clone()
        attend[:, 0] |= ~mask.any(1)  # a missing text still needs one position to attend to
        hidden = self.model(input_ids=ids, attention_mask=attend.long()).last_hidden_state
        return pool_tokens(hidden, mask, self.pooling)
