"""Optimiser and learning-rate schedule from ``[train.optimizer]`` / ``[train.schedule]``.

The rate is computed from the global step by a pure function and written
into every parameter group before each step, so resuming needs only the step
number (no scheduler object state) and staged training can scale one group
(the encoders) without a second scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from polymodal.experiment import OptimizerConfig, ScheduleConfig


def build_optimizer(groups: dict[str, Iterable[nn.Parameter]], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """One optimiser over named parameter groups (each group remembers its name)."""
    param_groups = [{"params": list(ps), "name": name, "lr_scale": 1.0} for name, ps in groups.items()]
    param_groups = [g for g in param_groups if g["params"]]
    if cfg.name == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    betas = (float(cfg.betas[0]), float(cfg.betas[1]))
    if cfg.name == "adam":
        return torch.optim.Adam(param_groups, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the peak rate at optimiser step ``step`` (0-based) of ``total``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.name == "constant":
        return 1.0
    if cfg.name == "step":
        return cfg.gamma ** (step // cfg.step_size)
    span = max(1, total - cfg.warmup_steps)
    progress = min(1.0, max(0.0, (step - cfg.warmup_steps) / span))
    floor = cfg.min_lr_ratio
    if cfg.name == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return floor + (1 - floor) * (1 - progress)  # linear


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> float:
    """Write ``base_lr * factor * group lr_scale`` into every group; return the peak rate."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * factor * group.get("lr_scale", 1.0)
    return base_lr * factor
