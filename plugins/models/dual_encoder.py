"""CLIP-style dual encoder over any two input fields.

Each field is encoded, mean-pooled over its tokens, projected into a shared
space and L2-normalised; matching pairs are pulled together with the
symmetric InfoNCE loss at a learnable temperature. Any pair works: image-text,
audio-text, video-text, or two languages of text (``text`` / ``text_zh``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.batch import Batch
from polymodal.errors import ConfigError
from polymodal.model_api import ModelConfig
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel, build_encoders

#: CLIP's cap on the logit scale (1 / temperature), for numerical stability.
MAX_LOGIT_SCALE = 100.0


class DualEncoder(PolymodalModel):
    """Two towers in one embedding space."""

    def __init__(self, config: ModelConfig, ctx: ModelContext):
        super().__init__(config, ctx)
        build_encoders(self, config, ctx)
        params = ctx.params
        pair = list(params.pair) if params.pair else list(config.encoders)[:2]
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ConfigError(f"{ctx.source}: model.params.pair: a dual encoder needs two different fields, got {pair}")
        for f in pair:
            if f not in self.encoders:
                raise ConfigError(
                    f"{ctx.source}: model.params.pair: field {f!r} has no [model.encoders.{f}] table "
                    f"(encoders: {', '.join(self.encoders)})"
                )
        self.pair = tuple(pair)
        self.proj = nn.ModuleDict(
            {f: nn.Linear(int(self.encoders[f].output_dim), params.embed_dim, bias=False) for f in self.pair}
        )
        init = torch.tensor(math.log(1.0 / params.temperature))
        if params.learn_temperature:
            self.log_scale = nn.Parameter(init)
        else:
            self.register_buffer("log_scale", init)

    @property
    def embed_fields(self) -> tuple[str, ...]:
        return self.pair

    def embed(self, batch: Batch, field: str) -> torch.Tensor:
        if field not in self.proj:
            raise ConfigError(f"{self.source}: dual encoder embeds {', '.join(self.pair)}, not {field!r}")
        feats = self.encode(batch, (field,))[field]
        return F.normalize(self.proj[field](feats.pooled()), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def loss(self, batch: Batch) -> LossOutput:
        a, b = self.pair
        za, zb = self.embed(batch, a), self.embed(batch, b)
        # A row missing either side has no positive: leave it out of both directions.
        both = batch.inputs[a].present & batch.inputs[b].present
        za, zb = za[both], zb[both]
        if za.shape[0] < 2:
            zero = self.log_scale * 0.0
            return zero, {"loss": 0.0}
        logits = self.logit_scale() * za @ zb.t()
        labels = torch.arange(za.shape[0], device=za.device)
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
        acc = (logits.argmax(-1) == labels).float().mean()
        return loss, {"loss": float(loss.detach()), "acc": float(acc), "scale": float(self.logit_scale().detach())}
