"""Staged training: unimodal pre-training, then fusion with a freeze schedule.

Epochs ``[0, pretrain_epochs)``: every encoder learns alone through the
model's ``unimodal_loss(batch, field)`` (the fusion and head are untouched:
they get no gradient). The next ``freeze_epochs``: the encoders are frozen
(``requires_grad`` off, so they are provably unchanged) and the fusion and
head learn on the full model loss. After that everything trains, encoders at
``unfreeze_lr_scale`` times the rate so pre-trained features are not wrecked.
Encoders the config marks ``frozen`` stay frozen throughout.
"""

from __future__ import annotations

import torch

from polymodal.batch import Batch
from polymodal.model_api import LossOutput, PolymodalModel
from polymodal.strategy import StrategyContext
from polymodal_plugins.training.strategy_params import StagedParams


class StagedStrategy:
    name = "staged"

    def __init__(self, params: StagedParams, ctx: StrategyContext):
        self.cfg = params
        model = ctx.model
        self.phase = "pretrain"
        # Parameters frozen before training began (a frozen pretrained tower) stay frozen.
        self.always_frozen = {id(p) for p in model.parameters() if not p.requires_grad}

    def phase_of(self, epoch: int) -> str:
        if epoch < self.cfg.pretrain_epochs:
            return "pretrain"
        if epoch < self.cfg.pretrain_epochs + self.cfg.freeze_epochs:
            return "frozen"
        return "finetune"

    def begin_epoch(self, model: PolymodalModel, epoch: int, optimizer: torch.optim.Optimizer) -> str:
        self.phase = self.phase_of(epoch)
        encoder_params = {id(p) for p in model.stage_groups()["encoders"]}
        train_encoders = self.phase != "frozen"
        for p in model.parameters():
            if id(p) in self.always_frozen:
                p.requires_grad_(False)
            elif id(p) in encoder_params:
                p.requires_grad_(train_encoders)
        for group in optimizer.param_groups:
            if group.get("name") == "encoders":
                group["lr_scale"] = self.cfg.unfreeze_lr_scale if self.phase == "finetune" else 1.0
        return self.phase

    def loss(self, model: PolymodalModel, batch: Batch) -> LossOutput:
        if self.phase != "pretrain":
            return model.loss(batch)
        total = None
        logs: dict[str, float] = {}
        for field in model.input_fields:
            if field not in batch.inputs:
                continue
            loss, field_logs = model.unimodal_loss(batch, field)
            total = loss if total is None else total + loss
            logs.update({f"{k}_{field}": v for k, v in field_logs.items()})
        assert total is not None, "batch has none of the model's input fields"
        logs["loss"] = float(total.detach())
        return total, logs

    def state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        pass

