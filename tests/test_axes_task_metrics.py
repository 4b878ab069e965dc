"""``[axes.task] metrics = [...]``: metrics chosen by registry name, checked before training, replaceable."""

from __future__ import annotations

import pytest
import torch
from axes_models import context, trained
from torchmetrics import Metric

from polymodal import component
from polymodal.errors import PolymodalError
from polymodal.testing import run_suite_with
from polymodal_plugins.axes.task import TaskAxis

SUITE = """
name = "named-metrics"
seeds = [0]
[defaults.data]
dataset = "shapes"
params = {{ num_samples = 32, image_size = 16, frames = 2, distractors = 1 }}
batch_size = 16
[defaults.train]
epochs = 1
[runs.clf]
axes = ["task"]
model.name = "fusion-classifier"
model.fusion = "concat"
model.encoders.image = {{ name = "cnn", params = {{ width = 4, depth = 1, output_dim = 8 }} }}
[axes.task]
metrics = {metrics}
"""


class ConstantAccuracy(Metric):
    """A third party's 'accuracy' that replaces the built-in one (a constant, so its use is visible)."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, top_k=(1,), **kwargs):
        super().__init__(**kwargs)
        self.add_state("n", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, scores, targets) -> None:
        self.n += len(targets)

    def compute(self) -> torch.Tensor:
        return torch.tensor(0.123)


def test_only_the_named_metrics_are_computed_and_equal_the_defaults(tmp_path) -> None:
    model, data = trained("image", str(tmp_path.parent))
    default = {r.metric: r for r in TaskAxis(ks=[]).run(model, data, context(tmp_path, "task", limit=48))}
    named = {r.metric: r for r in TaskAxis(ks=[], metrics=["accuracy", "macro-f1"]).run(
        model, data, context(tmp_path, "task", limit=48))}
    assert set(named) == {"accuracy", "macro-f1"}
    assert named["accuracy"].value == pytest.approx(default["accuracy"].value)
    assert named["macro-f1"].value == pytest.approx(default["f1_macro"].value)
    assert named["accuracy"].extra["higher_is_better"] is True
    assert named["accuracy"].extra["per_sample"] == default["accuracy"].extra["per_sample"]


def test_a_metric_another_plugin_replaces_is_the_one_used(tmp_path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(metrics='["accuracy", "balanced-accuracy"]'))
    replacement = component("metrics", "accuracy", ConstantAccuracy, replaces="metric.classify",
                            capabilities=["classify"])
    rows = run_suite_with(suite, replacement, out=tmp_path / "out", limit=8)
    task = {r["metric"]: r["value"] for r in rows if r["axis"] == "task"}
    assert task["accuracy"] == pytest.approx(0.123)
    assert set(task) == {"accuracy", "balanced-accuracy"}


@pytest.mark.parametrize(("metrics", "message"), [
    ('["acuracy"]', "did you mean.*accuracy"),
    ('["fid"]', "metric 'fid' declares none of the capabilities the task axis feeds"),
    ("[]", "non-empty list of metric names"),
])
def test_bad_metric_names_fail_before_training(tmp_path, metrics: str, message: str) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(metrics=metrics))
    with pytest.raises(PolymodalError, match=f"axes.task.*{message}") as info:
        run_suite_with(suite, out=tmp_path / "out", limit=8)
    assert f"{suite}: axes.task" in str(info.value)  # the problem names the file and the table
    assert not (tmp_path / "out" / "results.jsonl").exists() or not (tmp_path / "out" / "results.jsonl").read_text()
