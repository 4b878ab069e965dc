"""Units of work: an axis killed between any two of its commits and resumed equals an uninterrupted run.

The in-memory store below does what the runner does with a unit (dedupe its
rows, append rows and artifacts, record the commit) and "dies" just before the
N-th commit, for every N, as a SIGKILL between two writes would. The three
axes that write several rows per unit are the loss scenarios of issue 15:
noise summaries averaged over the re-run corruptions only, an importance
block skipped after its marker row, and an attack group losing
``attack_success_rate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import polymodal
from polymodal.evaluation import AxisContext, Unit, condition_key
from polymodal.experiment import experiment_from_dict


class Killed(Exception):
    """Stands for a SIGKILL before a unit's commit record."""


class Store:
    """The committed state of one results folder for one (run, axis)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.artifacts: list[dict[str, Any]] = []
        self.units: set[str] = set()
        self.keys: set[str] = set()

    def process(self, axis: Any, model: Any, data: Any, ctx: AxisContext, kill_at: int | None) -> int:
        """Run the axis as one process; returns the number of commits made (kill: raises Killed)."""
        ctx.committed_units, ctx.committed_rows = set(self.units), list(self.rows)
        commits = 0

        def commit(unit: Unit) -> None:
            nonlocal commits
            commits += 1
            if commits == kill_at:
                raise Killed
            for row in unit.rows:
                key = condition_key(row.axis, row.metric, row.conditions)
                if key not in self.keys:
                    self.keys.add(key)
                    self.rows.append(row)
            self.artifacts.extend(unit.artifacts)
            if unit.key is not None:
                self.units.add(unit.key)

        ctx.commit = commit
        for row in axis.run(model, data, ctx):
            ctx.accept(row)
        ctx.finish()
        return commits

    def dump(self) -> tuple[list[str], list[str]]:
        return ([json.dumps(r.to_json(), sort_keys=True) for r in self.rows],
                [json.dumps(a, sort_keys=True) for a in self.artifacts])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any, Any]:
    from polymodal_plugins.training.trainer import Trainer, prepare

    torch.set_num_threads(1)
    plugins = polymodal.get_plugins()
    cfg = experiment_from_dict({
        "name": "units", "data": {"dataset": "shapes", "params": {"image_size": 16}, "limit": 32, "batch_size": 16},
        "model": {"name": "fusion-classifier", "fusion": "concat", "encoders": {
            "image": {"name": "cnn", "params": {"width": 8, "depth": 2, "output_dim": 16}},
            "text": {"name": "gru", "params": {"embed_dim": 16, "hidden_dim": 16, "output_dim": 16}}}},
        "train": {"epochs": 1, "device": "cpu", "evaluate": False}})
    model, mctx, data = prepare(cfg, plugins, "<test>")
    Trainer(cfg, model, mctx, data, tmp_path_factory.mktemp("train"), plugins=plugins, progress=False).fit()
    return plugins, model.eval(), mctx, data


def _context(setup: Any, axis: str, out: Path, limit: int) -> AxisContext:
    plugins, _model, mctx, _data = setup
    return AxisContext(run="r", axis=axis, conditions={"model": "fusion-classifier", "fusion": "concat"},
                       device=torch.device("cpu"), plugins=plugins, model_ctx=mctx, out_dir=out, limit=limit)


def _every_kill_point(axis: Any, model: Any, data: Any, make_ctx: Any) -> tuple[int, tuple]:
    ref = Store()
    total = ref.process(axis, model, data, make_ctx(), None)
    expected = ref.dump()
    assert total >= 3, "the axis should commit several units"
    for kill_at in range(1, total + 1):
        store = Store()
        with pytest.raises(Killed):
            store.process(axis, model, data, make_ctx(), kill_at)
        store.process(axis, model, data, make_ctx(), None)  # --resume
        got = store.dump()
        assert got[0] == expected[0], f"rows differ after a kill before commit {kill_at} of {total}"
        assert got[1] == expected[1], f"artifacts differ after a kill before commit {kill_at} of {total}"
    return total, expected


def test_noise_axis_killed_mid_axis_resumes_to_the_same_rows_and_summaries(setup: Any, tmp_path: Path) -> None:
    plugins, model, _mctx, data = setup
    axis = plugins.build("axes", "robustness.noise", severities=[1, 5], batch_size=8,
                         corruptions={"image": ["gaussian_noise", "missing"], "text": ["word_dropout"]})
    total, (rows, _arts) = _every_kill_point(axis, model, data,
                                             lambda: _context(setup, "robustness.noise", tmp_path, 16))
    means = [json.loads(r) for r in rows if json.loads(r)["metric"] == "mean_auc_relative"]
    assert sorted(m["conditions"]["modality"] for m in means) == ["all", "image", "text"]
    assert next(m for m in means if m["conditions"]["modality"] == "all")["extra"]["corruptions"] == [
        "image/gaussian_noise", "image/missing", "text/word_dropout"]
    assert total == 6  # clean, three corruption groups, the means, the axis's implicit unit


def test_importance_axis_killed_mid_block_keeps_every_row_and_artifact(setup: Any, tmp_path: Path) -> None:
    plugins, model, _mctx, data = setup
    axis = plugins.build("axes", "interpretability.importance", attribution_samples=4, examples=1,
                                         ig_steps=2, deletion_steps=2, batch_size=8)
    _total, (rows, arts) = _every_kill_point(axis, model, data,
                                             lambda: _context(setup, "interpretability.importance", tmp_path, 8))
    metrics = {json.loads(r)["metric"] for r in rows}
    assert {"occlusion_max_drop", "deletion_auc", "deletion_faithful", "shapley"} <= metrics
    assert len(arts) >= 4  # ablation + shapley + two heatmaps, committed with their units


def test_adversarial_attack_group_commits_both_rows_together(setup: Any, tmp_path: Path) -> None:
    plugins, model, _mctx, data = setup
    axis = plugins.build("axes", "robustness.adversarial", attacks=["fgsm"], norms=["linf"],
                                         epsilons=[0.01, 0.05], batch_size=8)
    _total, (rows, _arts) = _every_kill_point(axis, model, data,
                                              lambda: _context(setup, "robustness.adversarial", tmp_path, 8))
    metrics = [json.loads(r)["metric"] for r in rows]
    assert metrics.count("attack_success_rate") == metrics.count("robust_accuracy") - 1


def test_units_do_not_nest_and_an_exception_discards_the_unit(setup: Any, tmp_path: Path) -> None:
    ctx = _context(setup, "x", tmp_path, 8)
    with pytest.raises(RuntimeError, match="do not nest"), ctx.unit("a"), ctx.unit("b"):
        pass
    with pytest.raises(ValueError), ctx.unit("c"):
        ctx.row("m", 1.0)
        raise ValueError
    assert not ctx.unit_done("c") and not ctx.stored_rows("m")
    with ctx.unit("d", level=1):
        ctx.row("m", 2.0, level=1)
    assert ctx.unit_done("d", level=1) and not ctx.unit_done("d", level=2)
    assert [r.value for r in ctx.stored_rows("m", level=1)] == [2.0]
