"""The built-in trainer of suite runs (kind ``trainers``, name ``default``).

The runner asks for a trained model per run; this trains it with the same
:class:`~polymodal_plugins.training.trainer.Trainer` as ``polymodal train``,
always resumable from the run's own checkpoint folder, so a suite killed
mid-training continues where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polymodal.runner import TrainedRun
from polymodal_plugins.training.ddp import make_trainer
from polymodal_plugins.training.trainer import METRICS_FILE, prepare, resolve_device


def _figures(out_dir: Path) -> dict[str, dict[str, float]]:
    """The last figure of every (split, metric) the trainer recorded.

    Read from the trainer's own metrics file rather than its return value, so
    a run resumed after training finished reports the same figures.
    """
    figures: dict[str, dict[str, float]] = {}
    path = out_dir / METRICS_FILE
    if not path.exists():
        return figures
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        split = row.get("conditions", {}).get("split", "train")
        if row.get("value") is not None:
            figures.setdefault(split, {})[row["metric"]] = float(row["value"])
    return figures


def train_run(config: Any, plugins: Any, out_dir: Path, *, resume: bool = True, progress: bool = True,
              device: str | None = None, limit: int | None = None) -> TrainedRun:
    """Build, train (or resume) and return the run's model with its evaluation data."""
    model, ctx, data = prepare(config, plugins, config.name)
    if config.train.epochs == 0 and not config.train.max_steps:
        model.to(resolve_device(config.train.device))
        return TrainedRun(model=model, model_ctx=ctx, data=data, figures={})
    make_trainer(config, model, ctx, data, out_dir, plugins=plugins, progress=progress).fit(resume=resume)
    return TrainedRun(model=model, model_ctx=ctx, data=data, figures=_figures(Path(out_dir)))
