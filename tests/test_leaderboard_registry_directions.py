"""An old results folder (rows without ``extra.higher_is_better``) gets its columns' directions from the
metric registry -- the registered metric's declared ``higher_is_better`` -- never from the name."""

from __future__ import annotations

import json

import torch
from torchmetrics import Metric

from polymodal import components
from polymodal.leaderboard import build_leaderboard, registered_direction
from polymodal.report import load_results
from polymodal.stats import encode_per_sample
from polymodal.testing import make_plugin_manager


class Misses(Metric):
    """A third party's metric declaring lower-is-better under a name that says nothing about it."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("n", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, x) -> None:
        self.n += float(x)

    def compute(self) -> torch.Tensor:
        return self.n


class Several(Misses):
    """Figures of different senses: declares them per figure."""

    higher_is_better = None
    figure_directions = {"hits": True, "slowness": False}


plugin = components(("metrics", "quux", Misses, {}), ("metrics", "several", Several, {}))


def _old_folder(tmp_path, metrics):
    """A results.jsonl as written before rows carried the direction (no ``higher_is_better`` in extra)."""
    ids = list(range(30))
    lines = []
    for metric in metrics:
        for run, scores in (("a", [1.0] * 25 + [0.0] * 5), ("b", [0.0] * 25 + [1.0] * 5)):
            lines.append({"axis": "task", "metric": metric, "value": sum(scores) / 30, "run": run,
                          "conditions": {"model": run}, "extra": {"per_sample": encode_per_sample(scores, ids)}})
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return load_results(tmp_path)


def test_old_rows_take_the_registered_metrics_direction(tmp_path) -> None:
    plugins = make_plugin_manager(plugin, entry_points=True)
    folder = _old_folder(tmp_path, ["quux", "accuracy", "hits", "slowness", "error_rate"])
    assert all("higher_is_better" not in r.extra for r in folder.rows)
    board = build_leaderboard(folder.rows, plugins=plugins)
    col = {c.metric: c for c in board.columns}
    # the third party's declaration, although nothing in the name says lower is better
    assert col["quux"].higher_is_better is False and col["quux"].direction_source == "registry"
    assert board.best["task/quux"] == frozenset({"b"})
    assert col["accuracy"].higher_is_better is True  # the built-in 'accuracy' metric's declaration
    assert board.best["task/accuracy"] == frozenset({"a"})
    # figures a metric declares one by one
    assert col["hits"].higher_is_better is True and col["slowness"].higher_is_better is False
    # no registered metric declares it: still unknown, and no best marked
    assert col["error_rate"].higher_is_better is None and col["error_rate"].direction_source is None
    assert board.best["task/error_rate"] == frozenset() and "unknown" in board.best_notes["task/error_rate"]


def test_a_rows_own_fact_wins_over_the_registry(tmp_path) -> None:
    plugins = make_plugin_manager(plugin)
    rows = [r for r in _old_folder(tmp_path, ["quux"]).rows]
    for r in rows:
        r.extra["higher_is_better"] = True
    col = build_leaderboard(rows, plugins=plugins).column("task/quux")
    assert col.higher_is_better is True and col.direction_source == "rows"
    assert registered_direction(plugins, "quux") is False
    assert registered_direction(plugins, "nope") is None
