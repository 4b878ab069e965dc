"""``range-classifier``: classify the shape and estimate its distance (capability ``estimate-range``).

``estimate-range`` is a capability polymodal does not know: it is declared on
this model's spec and required by the ``range-estimation`` axis, and that is
all it takes. The model asks of it ``estimate_range(batch) -> Tensor[B]``
(metres). It is built only from the public model API: encoders and fusion
come from the registries through the :class:`~polymodal.model_api.ModelContext`.

``model.params``: ``range_target`` (default ``distance``), ``range_weight``
(weight of the distance loss, default 1.0) and ``max_range`` (metres the
regression is scaled by, default 10.0).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal import ConfigError
from polymodal.batch import Batch
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel, build_encoders

PARAMS = {"range_target": "distance", "range_weight": 1.0, "max_range": 10.0}


class RangeClassifier(PolymodalModel):
    """A fusion classifier with a distance head (see module docs)."""

    def __init__(self, config: Any, ctx: ModelContext):
        super().__init__(config, ctx)
        unknown = sorted(set(config.params) - set(PARAMS))
        if unknown:
            raise ConfigError(f"{ctx.source}: model.params: range-classifier takes {', '.join(PARAMS)}; "
                              f"unknown: {', '.join(unknown)}")
        self.params = {**PARAMS, **config.params}
        if self.params["range_target"] not in ctx.targets:
            raise ConfigError(f"{ctx.source}: model.params.range_target: the dataset has no target "
                              f"{self.params['range_target']!r} (targets: {', '.join(ctx.targets)})")
        build_encoders(self, config, ctx)
        dims = {f: int(e.output_dim) for f, e in self.encoders.items()}
        self.fusion = ctx.build_fusion(config.fusion, dims, config.fusion_params)
        width = int(self.fusion.output_dim)
        self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, ctx.num_classes(config)))
        self.range_head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def _fused(self, batch: Batch) -> torch.Tensor:
        return self.fusion(self.encode(batch))

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.head(self._fused(batch))

    def estimate_range(self, batch: Batch) -> torch.Tensor:
        """Distance in metres, ``[B]``."""
        return self.range_head(self._fused(batch))[:, 0] * float(self.params["max_range"])

    def loss(self, batch: Batch) -> LossOutput:
        fused = self._fused(batch)
        logits = self.head(fused)
        y = self.target(batch).long()
        scale = float(self.params["max_range"])
        distance = batch.targets[self.params["range_target"]].float().to(fused.device)
        mse = F.mse_loss(self.range_head(fused)[:, 0], distance / scale)
        ce = F.cross_entropy(logits, y)
        loss = ce + float(self.params["range_weight"]) * mse
        return loss, {"loss": float(loss.detach()), "acc": float((logits.argmax(-1) == y).float().mean()),
                      "range_rmse_m": float(mse.detach().sqrt()) * scale}

    def interpretation(self) -> dict[str, torch.Tensor]:
        getter = getattr(self.fusion, "interpretation", None)
        return getter() if callable(getter) else {}
