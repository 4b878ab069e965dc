"""The fusion classifier: encoders -> fusion strategy -> head.

Which modalities it classifies is decided only by the ``[model.encoders]``
tables, and how they are combined only by ``model.fusion``: a one-word swap.
Video understanding is the same model with a video field.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.batch import Batch
from polymodal.model_api import ModelConfig
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel, build_encoders
from polymodal_plugins.models.heads import mlp_head


class FusionClassifier(PolymodalModel):
    """Classify any combination of input fields through a swappable fusion."""

    def __init__(self, config: ModelConfig, ctx: ModelContext):
        super().__init__(config, ctx)
        build_encoders(self, config, ctx)
        self.num_classes = ctx.num_classes(config)
        dims = {f: int(e.output_dim) for f, e in self.encoders.items()}
        self.fusion = ctx.build_fusion(config.fusion, dims, config.fusion_params)
        self.head = mlp_head(int(self.fusion.output_dim), self.num_classes, config.head)
        # Stage 1 of staged training fits each encoder with its own small head,
        # so it learns something useful before the fusion ever sees it.
        self.aux_heads = nn.ModuleDict({f: nn.Linear(d, self.num_classes) for f, d in dims.items()})

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.fusion(self.encode(batch)))

    def predict(self, batch: Batch) -> torch.Tensor:
        return self(batch)

    def loss(self, batch: Batch) -> LossOutput:
        loss, logs, _ = self.loss_and_predict(batch)
        return loss, logs

    def loss_and_predict(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
        """One forward pass gives the loss and the logits evaluation needs."""
        logits = self(batch)
        y = self.target(batch).long()
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(-1) == y).float().mean()
        return loss, {"loss": float(loss.detach()), "acc": float(acc)}, logits

    def unimodal_loss(self, batch: Batch, field: str) -> LossOutput:
        feats = self.encode(batch, (field,))[field]
        present = feats.present
        logits = self.aux_heads[field](feats.pooled())
        y = self.target(batch).long()
        if not bool(present.any()):
            zero = logits.sum() * 0.0
            return zero, {"loss": 0.0}
        loss = F.cross_entropy(logits[present], y[present])
        acc = (logits[present].argmax(-1) == y[present]).float().mean()
        return loss, {"loss": float(loss.detach()), "acc": float(acc)}

    def stage_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "encoders": list(self.encoders.parameters()),
            "fusion": [*self.fusion.parameters(), *self.head.parameters()],
            "aux": list(self.aux_heads.parameters()),
        }

    def interpretation(self) -> dict[str, torch.Tensor]:
        """What the fusion exposes (modality weights, attention maps) from the last forward."""
        getter = getattr(self.fusion, "interpretation", None)
        return getter() if callable(getter) else {}
