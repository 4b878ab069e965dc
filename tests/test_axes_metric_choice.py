"""``metrics = [...]`` on every axis that computes metrics: chosen by registry name, replaceable, refused
with one line on an axis whose figures are fixed (its declared ``metric_feeds``)."""

from __future__ import annotations

import pytest
import torch
from axes_models import context, trained
from torchmetrics import Metric

from polymodal import component
from polymodal.errors import PolymodalError
from polymodal.stats import decode_per_sample
from polymodal.testing import run_suite_with
from polymodal_plugins.axes.retrieval import RetrievalAxis

SUITE = """
name = "metric-choice"
seeds = [0]
[defaults.data]
dataset = "shapes"
params = {{ num_samples = 24, image_size = 16, frames = 2, distractors = 1 }}
batch_size = 12
[defaults.train]
epochs = 1
[runs.dual]
axes = ["{axis}"]
model.name = "dual-encoder"
model.encoders.image = {{ name = "cnn", params = {{ width = 4, depth = 1, output_dim = 8 }} }}
model.encoders.text = {{ name = "gru" }}
[axes."{axis}"]
{params}
"""


class ConstantRetrieval(Metric):
    """A third party's ``retrieval`` replacing the built-in (constant figures, so its use is visible)."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, ks=(1,), **kwargs):
        super().__init__(**kwargs)
        self.ks = tuple(ks)
        self.add_state("n", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, gallery, gallery_ids, queries, query_gallery_ids) -> None:
        self.n += len(queries)

    def compute(self) -> dict[str, torch.Tensor]:
        return {f"{side}_recall@{k}": torch.tensor(0.321) for side in ("text_to_image", "image_to_text")
                for k in self.ks}


class QueryCount(Metric):
    """An added metric a suite chooses by name: one figure per pair (the number of queries)."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, ks=(1,), **kwargs):
        super().__init__(**kwargs)
        self.add_state("n", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, gallery, gallery_ids, queries, query_gallery_ids) -> None:
        self.n += len(queries)

    def compute(self) -> torch.Tensor:
        return self.n.float()


def test_retrieval_builds_its_metric_by_name_and_reads_its_directions(tmp_path) -> None:
    model, data = trained("dual", str(tmp_path.parent))
    rows = list(RetrievalAxis(ks=[1]).run(model, data, context(tmp_path, "retrieval", limit=16)))
    hib = {r.metric: r.extra["higher_is_better"] for r in rows}
    assert hib["recall@1"] is True and hib["mrr"] is True
    assert hib["mean_rank"] is False and hib["median_rank"] is False  # the metric's figure_directions
    recalls = [r for r in rows if r.metric == "recall@1"]
    assert len(recalls) == 2
    assert all(len(decode_per_sample(r.extra["per_sample"])) == r.extra["queries"] for r in recalls)


def test_a_retrieval_metric_another_plugin_replaces_is_the_one_used(tmp_path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(axis="retrieval", params="ks = [1]"))
    replacement = component("metrics", "retrieval", ConstantRetrieval, replaces="metric.retrieval",
                            capabilities=["embed"])
    rows = [r for r in run_suite_with(suite, replacement, out=tmp_path / "out", limit=8) if r["axis"] == "retrieval"]
    assert {r["metric"] for r in rows} == {"recall@1"}
    assert [r["value"] for r in rows] == pytest.approx([0.321, 0.321])


def test_an_added_metric_is_chosen_by_name(tmp_path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(axis="retrieval", params='metrics = ["query-count", "retrieval"]\nks = [1]'))
    added = component("metrics", "query-count", QueryCount, capabilities=["embed"])
    rows = [r for r in run_suite_with(suite, added, out=tmp_path / "out", limit=8) if r["axis"] == "retrieval"]
    counts = [r for r in rows if r["metric"] == "query-count"]
    assert len(counts) == 1 and counts[0]["value"] == 8.0
    assert counts[0]["extra"]["higher_is_better"] is False
    assert "recall@1" in {r["metric"] for r in rows}


@pytest.mark.parametrize(("axis", "params", "message"), [
    ("robustness.noise", 'metrics = ["accuracy"]',
     "axes.robustness.noise: key 'metrics': axis 'robustness.noise' computes fixed figures"),
    ("retrieval", 'metrics = ["accuracy"]', "metric 'accuracy' declares none of the capabilities the retrieval"),
    ("zero-shot", 'metrics = ["retrieval"]', "metric 'retrieval' declares none of the capabilities the zero-shot"),
])
def test_metrics_an_axis_cannot_take_fail_validation_in_one_line(tmp_path, axis, params, message) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(axis=axis, params=params))
    with pytest.raises(PolymodalError) as info:
        run_suite_with(suite, out=tmp_path / "out", limit=8)
    lines = [line.strip() for line in str(info.value).splitlines() if message in line]
    assert len(lines) == 1 and lines[0].startswith(str(suite)), str(info.value)


class NoKs(QueryCount):
    """Declares ``embed`` but does not take ``ks``: a one-line error, not a traceback."""

    def __init__(self, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected {sorted(kwargs)}")
        super().__init__()


def test_a_chosen_metric_that_cannot_be_built_as_its_capability_says_is_one_line(tmp_path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(axis="retrieval", params='metrics = ["no-ks"]'))
    run_suite_with(suite, component("metrics", "no-ks", NoKs, capabilities=["embed"]), out=tmp_path / "out", limit=8)
    manifest = (tmp_path / "out" / "manifest.json").read_text()
    assert "ConfigError: axis retrieval: metrics: metric 'no-ks' declares 'embed', so it is built with ['ks']" in manifest


def test_info_shows_which_metrics_an_axis_lets_a_suite_choose(capsys) -> None:
    import json

    from polymodal.cli import main

    assert main(["info", "axis", "retrieval", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metric_feeds"] == ["embed"]
    assert main(["info", "axis", "robustness.noise"]) == 0
    assert "metrics = [...]: not choosable (fixed figures)" in capsys.readouterr().out
