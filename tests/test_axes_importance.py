"""interpretability.importance: exact Shapley efficiency, ablation, IG completeness, deletion faithfulness."""

from __future__ import annotations

import itertools

import pytest
import torch
from axes_models import context, trained

from polymodal.errors import ConfigError
from polymodal_plugins.axes.importance import ImportanceAxis, integrated_gradients, shapley_values


def test_shapley_values_of_a_known_game():
    # v(S) = sum of solo values + a pairwise synergy split evenly between a and b.
    solo = {"a": 1.0, "b": 2.0, "c": 0.5}
    players = list(solo)

    def v(s):
        return sum(solo[p] for p in s) + (3.0 if {"a", "b"} <= s else 0.0)

    values = {frozenset(c): v(set(c)) for r in range(4) for c in itertools.combinations(players, r)}
    phi = shapley_values(values, players)
    assert phi == pytest.approx({"a": 2.5, "b": 3.5, "c": 0.5})


@pytest.mark.parametrize("value", ["true_prob", "accuracy"])
def test_shapley_sums_to_full_minus_empty(tmp_path, value):
    model, data = trained("classifier", str(tmp_path.parent))
    ctx = context(tmp_path, "interpretability.importance", limit=48)
    rows = list(ImportanceAxis(value=value, methods=["ablation", "shapley"]).run(model, data, ctx))
    shapley = {r.conditions["modality"]: r.value for r in rows if r.metric == "shapley"}
    assert set(shapley) == {"image", "text"}
    extra = next(r.extra for r in rows if r.metric == "shapley")
    assert sum(shapley.values()) == pytest.approx(extra["full"] - extra["empty"], abs=1e-9)
    # Two players: phi_text = ((v(T) - v(0)) + (v(IT) - v(I))) / 2, from the stored coalition values.
    c = extra["coalitions"]
    assert shapley["text"] == pytest.approx(((c["text"] - c["none"]) + (c["image+text"] - c["image"])) / 2)
    ablation = {r.conditions["modality"]: r.value for r in rows if r.metric == "ablation_drop"}
    assert ablation["text"] == pytest.approx(c["image+text"] - c["image"])
    # The caption names the shape; removing it must hurt a model trained on it more than removing the image.
    assert shapley["text"] > shapley["image"]
    kinds = [a["data"]["method"] for a in ctx.take_artifacts() if a["kind"] == "importance"]
    assert kinds == ["ablation", "shapley"]


def test_integrated_gradients_completeness(tmp_path):
    model, data = trained("image", str(tmp_path.parent))
    batch = next(iter(data.eval_batches("test")))
    y = batch.targets["color"]
    for baseline in ("blur", "mean"):
        attr, gap = integrated_gradients(model, batch, ["image"], y, steps=32, baseline=baseline)
        total = attr["image"].flatten(1).sum(1)
        assert torch.allclose(total, gap, atol=2e-2 * float(gap.abs().max()) + 1e-4)


def test_deletion_curve_attribution_beats_random(tmp_path):
    model, data = trained("image", str(tmp_path.parent))
    ctx = context(tmp_path, "interpretability.importance", limit=64)
    rows = list(ImportanceAxis(methods=["integrated_gradients", "occlusion", "deletion"], examples=2)
                .run(model, data, ctx))
    auc = {r.conditions["order"]: r for r in rows if r.metric == "deletion_auc"}
    curve_att, curve_rnd = auc["attribution"].extra["attribution_curve"], auc["random"].extra["random_curve"]
    # Both start from the clean input and end at the fully-baselined input.
    assert curve_att[0] == pytest.approx(curve_rnd[0])
    assert curve_att[-1] == pytest.approx(curve_rnd[-1])
    assert auc["attribution"].value < auc["random"].value
    assert next(r.value for r in rows if r.metric == "deletion_faithful") == 1.0
    assert next(r.value for r in rows if r.metric == "ig_completeness_error") < 0.05
    maps = [a for a in ctx.take_artifacts() if a["kind"] == "attention_map"]
    assert {m["data"]["method"] for m in maps} == {"integrated_gradients", "occlusion"}
    assert all((tmp_path / m["path"]).stat().st_size > 100 for m in maps)


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="methods.*shap"):
        ImportanceAxis(methods=["shap"])
