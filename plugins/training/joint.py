"""Joint training: all modalities together on the model's own loss."""

from __future__ import annotations

import torch

from polymodal.batch import Batch
from polymodal.model_api import LossOutput, PolymodalModel


class JointStrategy:
    """All modalities together on the model's own loss."""

    name = "joint"

    def __init__(self, params: object = None, ctx: object = None):
        pass  # joint training has no options and keeps no state

    def begin_epoch(self, model: PolymodalModel, epoch: int, optimizer: torch.optim.Optimizer) -> str:
        return "joint"

    def loss(self, model: PolymodalModel, batch: Batch) -> LossOutput:
        return model.loss(batch)

    def state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        pass
