"""The robustness axes build their headline metric through the registry by name (issue 14).

A plugin that ``replaces`` ``accuracy`` is what ``robustness.noise``, ``robustness.adversarial`` and the
importance axis's accuracy coalitions measure, one that replaces ``retrieval`` is the embedding models'
noise headline (its declared ``headline_figures``), and a lower-is-better metric becomes a
higher-is-better headline from its declared direction.
"""

from __future__ import annotations

import pytest
import torch
from torchmetrics import Metric

from polymodal import component
from polymodal.errors import PolymodalError
from polymodal.stats import decode_per_sample
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
    lines = [line for line in str(info.value).splitlines() if "axes.robustness.noise.headline" in line and message in line]
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


# -- embedding models: the ``retrieval`` headline (recall@1 both ways) by name -----------------------------

DUAL = """
name = "headline-embed"
seeds = [0]
[defaults.data]
dataset = "shapes"
params = {{ num_samples = 24, image_size = 16, frames = 2, distractors = 1 }}
batch_size = 12
[defaults.train]
epochs = 0
[runs.dual]
axes = ["robustness.noise"]
model.name = "dual-encoder"
model.params = {{ embed_dim = 8 }}
model.encoders.image = {{ name = "cnn", params = {{ width = 4, depth = 1, output_dim = 8 }} }}
model.encoders.text = {{ name = "gru", params = {{ embed_dim = 8, hidden_dim = 8, output_dim = 8 }} }}
[axes."robustness.noise"]
severities = [5]
corruptions = {{ image = ["missing"], text = [] }}
{params}
"""


class FixedRetrieval(Metric):
    """A third party's ``retrieval`` replacement following the embed contract, with fixed figures.

    Queries -> gallery recall@1 is 0.3, gallery -> queries 0.6, and its headline (a declared fact) is
    recall@1 both ways; no ``compute_details``, so the rows carry no per-sample scores.
    """

    higher_is_better = None
    full_state_update = False
    figure_directions = {"text_to_image_recall@1": True, "image_to_text_recall@1": True}
    headline_figures = ("text_to_image_recall@1", "image_to_text_recall@1")

    def __init__(self, ks=(1,), **kwargs):
        super().__init__(**kwargs)
        self.add_state("n", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, gallery, gallery_ids, queries, query_gallery_ids) -> None:
        self.n += len(queries)

    def compute(self) -> dict:
        return {"text_to_image_recall@1": torch.tensor(0.3), "image_to_text_recall@1": torch.tensor(0.6)}


class MeanRankOnly(FixedRetrieval):
    """A chosen embed headline that is lower-is-better (a rank): reported as ``1-<figure>``."""

    figure_directions = {"text_to_image_mean_rank": False}
    headline_figures = ("text_to_image_mean_rank",)

    def compute(self) -> dict:
        return {"text_to_image_mean_rank": torch.tensor(0.25)}


def _dual_rows(tmp_path, params: str = "", *extra) -> list[dict]:
    suite = tmp_path / "suite.toml"
    suite.write_text(DUAL.format(params=params))
    return [r for r in run_suite_with(suite, *extra, out=tmp_path / "out", limit=12)
            if r["axis"] == "robustness.noise"]


def test_noise_measures_the_retrieval_metric_another_plugin_replaces(tmp_path) -> None:
    replacement = component("metrics", "retrieval", FixedRetrieval, replaces="metric.retrieval",
                            capabilities=["embed"])
    rows = [r for r in _dual_rows(tmp_path, "", replacement) if r["metric"] == "recall@1"]
    got = {(r["conditions"]["corruption"], r["conditions"]["direction"]): r["value"] for r in rows}
    # the pair is (image, text): image queries rank texts ("text_to_image" = queries -> gallery), and back
    assert got == pytest.approx({("none", "image->text"): 0.3, ("none", "text->image"): 0.6,
                                 ("missing", "image->text"): 0.3, ("missing", "text->image"): 0.6})
    assert all("per_sample" not in r["extra"] and r["extra"]["higher_is_better"] is True for r in rows)


def test_a_chosen_embed_headline_reads_its_declared_figure_and_direction(tmp_path) -> None:
    added = component("metrics", "rank-only", MeanRankOnly, capabilities=["embed"])
    rows = _dual_rows(tmp_path, 'headline = { embed = "rank-only" }', added)
    got = {(r["conditions"]["corruption"], r["conditions"]["direction"]): r["value"]
           for r in rows if r["metric"] == "1-mean_rank"}
    assert got == pytest.approx({("none", "image->text"): 0.75, ("missing", "image->text"): 0.75})
    assert not [r for r in rows if r["metric"] == "recall@1"]


def test_the_registered_retrieval_headline_scores_a_collapsed_model_at_chance(tmp_path) -> None:
    rows = [r for r in _dual_rows(tmp_path) if r["metric"] == "recall@1"]
    got = {(r["conditions"]["corruption"], r["conditions"]["direction"]): r for r in rows}
    assert set(got) == {("none", "image->text"), ("none", "text->image"),
                        ("missing", "image->text"), ("missing", "text->image")}
    # Every image missing: all image embeddings are equal. Ties rank by index, so each text finds image 0
    # and only text 0 hits; every image query ranks the texts alike, so one image hits: 1/12 both ways
    # (the registered metric counted ties in the query's favour before, which scored text->image 1.0).
    for direction in ("image->text", "text->image"):
        missing = got[("missing", direction)]
        assert missing["value"] == pytest.approx(1 / 12)
        # compute_details' per-query hits
        assert sorted(decode_per_sample(missing["extra"]["per_sample"])) == [0.0] * 11 + [1.0]
        assert got[("none", direction)]["extra"]["per_sample"]  # clean rows carry intervals too


class Collapsed:
    """An embedding model whose every embedding is the same vector (a collapsed model)."""

    capabilities = frozenset({"embed"})
    embed_fields = ("image", "text")

    def embed(self, batch, field: str) -> torch.Tensor:
        return torch.ones(len(batch), 4)


def test_the_recall_meter_builds_the_registered_retrieval_metric() -> None:
    from polymodal.testing import make_plugin_manager
    from polymodal_plugins.axes.performance import meter_factory

    plugins = make_plugin_manager(entry_points=True)
    meter = meter_factory(Collapsed(), None, plugins)()
    assert meter.keys() == [("recall@1", "image->text"), ("recall@1", "text->image")]
    for _ in range(2):
        meter.update(Collapsed(), list(range(5)))
    assert meter.compute() == {("recall@1", "image->text"): pytest.approx(0.1),
                               ("recall@1", "text->image"): pytest.approx(0.1)}


# -- the adversarial axis: robust accuracy is the classify headline ----------------------------------------

ATTACKED = SUITE.replace('axes = ["robustness.noise"]', 'axes = ["robustness.adversarial"]').replace(
    """[axes."robustness.noise"]
severities = [1]
corruptions = {{ image = ["gaussian_noise"] }}
missing = false""", """[axes."robustness.adversarial"]
attacks = ["fgsm"]
epsilons = [0.01, 0.05]""")


def _attacked_rows(tmp_path, params: str = "", *extra) -> list[dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    suite = tmp_path / "suite.toml"
    suite.write_text(ATTACKED.format(params=params))
    return [r for r in run_suite_with(suite, *extra, out=tmp_path / "out", limit=8)
            if r["axis"] == "robustness.adversarial"]


def test_adversarial_robust_accuracy_follows_a_replaced_accuracy(tmp_path) -> None:
    plain = _attacked_rows(tmp_path / "plain")
    replacement = component("metrics", "accuracy", ConstantErrorRate, replaces="metric.classify",
                            capabilities=["classify"])
    rows = _attacked_rows(tmp_path / "replaced", "", replacement)
    robust = [r for r in rows if r["metric"] == "robust_accuracy"]
    assert len(robust) == 3 and all(r["value"] == pytest.approx(0.75) for r in robust), robust  # clean + 2 eps
    assert all("per_sample" not in r["extra"] for r in robust)  # hits are not behind 0.75: no intervals
    # the attack's own bookkeeping (argmax against the target) does not depend on the headline metric
    rates = lambda rs: [r["value"] for r in rs if r["metric"] == "attack_success_rate"]  # noqa: E731
    assert rates(rows) == rates(plain) and len(rates(rows)) == 2
    # the built-in accuracy's rows are the per-sample worst cases, never rising with epsilon
    base = [r for r in plain if r["metric"] == "robust_accuracy"]
    assert all(decode_per_sample(r["extra"]["per_sample"]).mean() == pytest.approx(r["value"]) for r in base)
    assert base[0]["value"] >= base[1]["value"] >= base[2]["value"]


def test_adversarial_and_importance_take_a_headline_checked_before_training(tmp_path) -> None:
    added = component("metrics", "error-rate", ConstantErrorRate, capabilities=["classify"])
    rows = _attacked_rows(tmp_path / "chosen", 'headline = { classify = "error-rate" }', added)
    assert [r["value"] for r in rows if r["metric"] == "robust_1-error-rate"] == pytest.approx([0.75] * 3)
    assert not [r for r in rows if r["metric"] == "robust_accuracy"]
    for axis in ("robustness.adversarial", "interpretability.importance"):
        suite = tmp_path / f"{axis}.toml"
        suite.write_text(ATTACKED.replace('"robustness.adversarial"', f'"{axis}"').replace(
            'attacks = ["fgsm"]\nepsilons = [0.01, 0.05]', "").format(params='headline = { classify = "acuracy" }'))
        with pytest.raises(PolymodalError) as info:
            run_suite_with(suite, out=tmp_path / axis, limit=8)
        lines = [line for line in str(info.value).splitlines()
                 if f"axes.{axis}.headline.classify: unknown metric 'acuracy' (did you mean 'accuracy'" in line]
        assert len(lines) == 1, str(info.value)


def test_importance_accuracy_coalitions_follow_the_classify_headline(tmp_path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(ATTACKED.replace('"robustness.adversarial"', '"interpretability.importance"').replace(
        'attacks = ["fgsm"]\nepsilons = [0.01, 0.05]', 'value = "accuracy"\nmethods = ["ablation", "shapley"]')
        .format(params='headline = { classify = "error-rate" }'))
    added = component("metrics", "error-rate", ConstantErrorRate, capabilities=["classify"])
    rows = [r for r in run_suite_with(suite, added, out=tmp_path / "out", limit=8)
            if r["axis"] == "interpretability.importance"]
    # every coalition is worth 1 - 0.25 under the chosen headline: no modality matters
    assert {r["metric"] for r in rows} == {"ablation_drop", "shapley"}
    assert all(r["value"] == pytest.approx(0.0) and r["extra"]["full"] == pytest.approx(0.75)
               and r["extra"]["headline"] == "error-rate" for r in rows), rows


def test_a_dict_headline_whose_figure_is_lower_is_better_names_its_row_inverted() -> None:
    from polymodal_plugins.axes.performance import Headline

    class ErrorDict:
        higher_is_better = None
        headline_figures = ("error",)
        figure_directions = {"error": False, "count": True}

    assert Headline("transcribe", "error-dict", lambda **kw: None, ErrorDict).key == "1-error-dict"
    ErrorDict.figure_directions = {"error": True}
    assert Headline("transcribe", "error-dict", lambda **kw: None, ErrorDict).key == "error-dict"
