"""The robustness axes build their headline metric through the registry by name (issue 14).

A plugin that ``replaces`` ``accuracy`` is what ``robustness.noise`` measures, and a lower-is-better
metric becomes a higher-is-better headline from its declared ``higher_is_better``.
"""

from __future__ import annotations

import pytest
import torch
from torchmetrics import Metric

from polymodal import component
from polymodal.errors import PolymodalError
from polymodal.testing import run_suite_with

SUITE = """
name = "headline"
seeds = [0]
[defaults.data]
dataset = "shapes"
params = {{ num_samples = 24, image_size = 16, frames = 2, distractors = 1 }}
batch_size = 12
[defaults.train]
epochs = 1
[runs.clf]
axes = ["robustness.noise"]
model.name = "fusion-classifier"
model.target = "color"
model.encoders.image = {{ name = "cnn", params = {{ width = 4, depth = 1, output_dim = 8 }} }}
[axes."robustness.noise"]
severities = [1]
corruptions = {{ image = ["gaussian_noise"] }}
missing = false
{params}
"""


class ConstantErrorRate(Metric):
    """A third party's ``accuracy`` replacement that is an error rate (lower is better), constant 0.25."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, num_classes: int, top_k=(1,), **kwargs):
        super().__init__(**kwargs)
        self.add_state("n", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        self.n += len(targets)

    def compute(self) -> torch.Tensor:
        return torch.tensor(0.25)


def _noise_rows(tmp_path, params: str = "", *extra) -> list[dict]:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(params=params))
    return [r for r in run_suite_with(suite, *extra, out=tmp_path / "out", limit=8)
            if r["axis"] == "robustness.noise"]


def test_noise_measures_the_accuracy_metric_another_plugin_replaces(tmp_path) -> None:
    replacement = component("metrics", "accuracy", ConstantErrorRate, replaces="metric.classify",
                            capabilities=["classify"])
    rows = [r for r in _noise_rows(tmp_path, "", replacement) if r["metric"] == "accuracy"]
    # clean and the one corrupted cell; 1 - 0.25 from the declared direction, not from the name
    assert len(rows) == 2 and all(r["value"] == pytest.approx(0.75) for r in rows), rows
    assert all(r["extra"]["higher_is_better"] is True for r in rows)
    assert all("per_sample" not in r["extra"] for r in rows)  # hits are not behind 0.75: no intervals


def test_a_chosen_headline_names_its_rows(tmp_path) -> None:
    added = component("metrics", "error-rate", ConstantErrorRate, capabilities=["classify"])
    rows = _noise_rows(tmp_path, 'headline = { classify = "error-rate" }', added)
    assert [r["value"] for r in rows if r["metric"] == "1-error-rate"] == pytest.approx([0.75, 0.75])
    assert not [r for r in rows if r["metric"] == "accuracy"]


@pytest.mark.parametrize(("params", "message"), [
    ('headline = { classify = "acuracy" }', "accuracy"),  # did-you-mean
    ('headline = { classify = "wer" }', "metric 'wer' does not declare capability 'classify'"),
    ('headline = { caption = "bleu" }', "no headline is chosen by name for capability 'caption'"),
])
def test_a_bad_headline_fails_validation_in_one_line(tmp_path, params, message) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(params=params))
    with pytest.raises(PolymodalError) as info:
        run_suite_with(suite, out=tmp_path / "out", limit=8)
    lines = [line for line in str(info.value).splitlines() if "headline" in line and message in line]
    assert len(lines) == 1, str(info.value)


class LastScoresErrorRate(Metric):
    """An answer metric that is an error rate and keeps per-question scores (``last_scores``)."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("wrong", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("n", default=torch.tensor(0), dist_reduce_fx="sum")
        self.last_scores: list[float] = []

    def update(self, replies, human_answers) -> None:
        self.last_scores = [float(r not in h) for r, h in zip(replies, human_answers, strict=True)]
        self.wrong += sum(self.last_scores)
        self.n += len(self.last_scores)

    def compute(self) -> torch.Tensor:
        return self.wrong / self.n


class Replier:
    capabilities = frozenset({"answer"})

    def answer(self, batch) -> list[str]:
        return ["cat", "dog", "cat"]

    def answer_choice(self, batch, options):
        return [0, None], None


def test_the_answer_meter_mixes_the_headline_metric_with_multiple_choice_and_keeps_per_sample_scores() -> None:
    from polymodal_plugins.axes.performance import AnswerAccuracyMeter, Headline

    head = Headline("answer", "error", lambda **kw: LastScoresErrorRate(**kw), LastScoresErrorRate)
    meter = AnswerAccuracyMeter(head)
    meter.update(Replier(), None, [{"answers": ["cat"]}, {"answers": ["cat"]}, {"answers": ["dog", "cat"]}])
    meter.update(Replier(), None, [{"options": ["a", "b"], "answer": 0}, {"options": ["a", "b"], "answer": 1}])
    out = meter.compute()
    # error-rate scores [0, 1, 0] -> headline 2/3 over 3 questions, plus multiple choice [1, 0]: 3/5;
    # the per-sample scores in the headline's sense, so they average to it
    assert out == {("1-error", None): pytest.approx(3 / 5)}
    assert meter.samples == {("1-error", None): [1.0, 0.0, 1.0, 1.0, 0.0]}
