"""Paired tests pair samples, not positions: runs on different data never share per-sample ids."""

from __future__ import annotations

import torch

from polymodal.evaluation import AxisContext
from polymodal.leaderboard import build_leaderboard
from polymodal.plugins import get_plugins
from polymodal.runner import data_scope


def _ctx(run: str, scope: str | None) -> AxisContext:
    return AxisContext(run=run, axis="task", conditions={}, device=torch.device("cpu"), plugins=get_plugins(),
                       model_ctx=None, out_dir=None, data_scope=scope)


def test_data_scope_names_the_samples_not_the_batching():
    base = {"dataset": "shapes", "params": {"num_samples": 64}, "batch_size": 8}
    assert data_scope(base) == data_scope({**base, "batch_size": 32, "workers": 2, "modalities": {"image": {}}})
    assert data_scope(base) != data_scope({**base, "params": {"num_samples": 64, "interaction": 2}})
    assert data_scope(base) != data_scope({**base, "limit": 16})
    assert data_scope(None) is None


def test_runs_on_other_data_are_not_paired_or_starred():
    same, other = data_scope({"dataset": "shapes"}), data_scope({"dataset": "shapes", "params": {"interaction": 2}})
    ones, halves = [1.0] * 40, [1.0, 0.0] * 20
    rows = [_ctx("a", same).row("accuracy", 1.0, per_sample=ones, higher_is_better=True),
            _ctx("b", same).row("accuracy", 0.5, per_sample=halves, higher_is_better=True),
            _ctx("c", other).row("accuracy", 1.0, per_sample=ones, higher_is_better=True)]
    board = build_leaderboard(rows, resamples=200)
    key = board.columns[0].key
    assert not board.best[key] and not board.tied[key]
    assert "other samples" in board.best_notes[key]
    # the same data: a and b are paired, and a is significantly better
    board = build_leaderboard(rows[:2], resamples=200)
    assert board.best[key] == frozenset({"a"})
