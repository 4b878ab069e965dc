"""Tiny trained models on ``shapes`` shared by the axes tests (built once per session, cached)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

import polymodal
from polymodal.evaluation import AxisContext
from polymodal.experiment import experiment_from_dict


def experiment(model: dict[str, Any], *, samples: int = 256, batch: int = 32, epochs: int = 1,
               max_steps: int | None = None, lr: float = 1e-2, extra_data: dict[str, Any] | None = None) -> Any:
    return experiment_from_dict({
        "data": {"dataset": "shapes", "params": {"num_samples": samples, "image_size": 16}, "batch_size": batch,
                 "modalities": {"image": {"size": 16}}, **(extra_data or {})},
        "model": model,
        "train": {"epochs": epochs, "max_steps": max_steps, "device": "cpu", "evaluate": False, "amp": "off",
                  "optimizer": {"lr": lr}},
    })


@functools.lru_cache(maxsize=None)
def trained(kind: str, tmp: str) -> tuple[Any, Any]:
    """(model, data) of a named tiny setup, trained for a few steps; cached per test session."""
    from polymodal_plugins.training.trainer import Trainer, prepare

    cnn = {"name": "cnn", "params": {"width": 16, "depth": 2, "output_dim": 32}}
    gru = {"name": "gru"}
    setups = {
        "image": ({"name": "fusion-classifier", "target": "color", "encoders": {"image": cnn}}, 4),
        "classifier": ({"name": "fusion-classifier", "fusion": "concat", "encoders": {"image": cnn, "text": gru}}, 1),
        "attention": ({"name": "fusion-classifier", "fusion": "attention", "encoders": {"image": cnn, "text": gru}}, 0),
        "dual": ({"name": "dual-encoder", "encoders": {"image": cnn, "text": gru}, "params": {"embed_dim": 32}}, 4),
    }
    model_cfg, epochs = setups[kind]
    config = experiment(model_cfg, epochs=epochs)
    plugins = polymodal.get_plugins()
    model, _ctx, data = prepare(config, plugins, f"<{kind}>")
    if epochs:
        Trainer(config, model, _ctx, data, Path(tmp) / kind, plugins=plugins, progress=False).fit()
    model.eval()
    return model, data


def context(tmp: Path, axis: str, *, limit: int | None = None, split: str = "test") -> AxisContext:
    from polymodal.model_api import ModelContext

    plugins = polymodal.get_plugins()
    return AxisContext(run="m/f/seed0", axis=axis, conditions={"model": "m", "fusion": "f", "seed": 0},
                       device=torch.device("cpu"), plugins=plugins, model_ctx=ModelContext(plugins=plugins),
                       out_dir=tmp, limit=limit, split=split)


def build(model_cfg: dict[str, Any], *, samples: int = 64, epochs: int = 0, tmp: str | None = None,
          lr: float = 1e-2, fields: list[str] | None = None) -> tuple[Any, Any]:
    """An (optionally briefly trained) model and its data for ad-hoc setups."""
    from polymodal_plugins.training.trainer import Trainer, prepare

    config = experiment(model_cfg, samples=samples, epochs=epochs, lr=lr,
                        extra_data={"fields": fields} if fields else None)
    plugins = polymodal.get_plugins()
    model, ctx, data = prepare(config, plugins, "<test>")
    if epochs:
        Trainer(config, model, ctx, data, Path(tmp or "."), plugins=plugins, progress=False).fit()
    return model.eval(), data
