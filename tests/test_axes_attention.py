"""interpretability.attention: fusion attention mass, weights, heatmaps, captioner word attention."""

from __future__ import annotations

import pytest
import torch
from axes_models import build, context, trained
from PIL import Image

from polymodal_plugins.axes.attention import AttentionAxis, normalised_entropy

CNN = {"name": "cnn", "params": {"width": 8, "depth": 2, "output_dim": 16}}


def test_normalised_entropy_bounds():
    got = normalised_entropy(torch.tensor([[1.0, 1, 1, 1], [0, 0, 5, 0], [0, 0, 0, 0]]))
    assert got[0] == pytest.approx(1.0) and got[1] == pytest.approx(0.0) and torch.isnan(got[2])


def test_attention_fusion_mass_and_heatmaps(tmp_path):
    model, data = trained("attention", str(tmp_path.parent))
    ctx = context(tmp_path, "interpretability.attention", limit=40)
    rows = list(AttentionAxis(examples=2).run(model, data, ctx))
    mass = {(r.conditions["modality"], r.conditions["key"]): r.value for r in rows if r.metric == "modality_attention"}
    # Each query modality's attention is a distribution over the other modality and the null slot.
    assert mass[("image", "text")] + mass[("image", "null")] == pytest.approx(1.0, abs=1e-6)
    assert mass[("text", "image")] + mass[("text", "null")] == pytest.approx(1.0, abs=1e-6)
    assert all(0 <= r.value <= 1 for r in rows if r.metric == "attention_entropy")
    arts = ctx.take_artifacts()
    maps = [a for a in arts if a["data"]["field"] == "image"]
    tokens = [a for a in arts if a["data"]["field"] == "text"]
    assert len(maps) == 2 and len(tokens) == 2
    png = Image.open(tmp_path / maps[0]["path"])
    assert png.size[0] >= 16 and png.mode == "RGB"
    first = tokens[0]["data"]
    assert len(first["tokens"]) == len(first["weights"])
    sample = data.splits["test"][0]["text"].split()
    assert [t for t in first["tokens"] if not t.startswith("<")] == sample


def test_weighted_fusion_weights_and_concat_says_why(tmp_path):
    weighted, data = build({"name": "fusion-classifier", "fusion": "weighted",
                            "encoders": {"image": CNN, "text": {"name": "gru"}}}, samples=16)
    ctx = context(tmp_path, "interpretability.attention", limit=16)
    rows = list(AttentionAxis().run(weighted, data, ctx))
    weights = {r.conditions["modality"]: r.value for r in rows if r.metric == "modality_weight"}
    assert set(weights) == {"image", "text"} and sum(weights.values()) == pytest.approx(1.0)
    concat, data = trained("classifier", str(tmp_path.parent))
    (row,) = list(AttentionAxis().run(concat, data, ctx))
    assert row.value is None and "no attention" in row.extra["reason"]


def test_captioner_word_attention(tmp_path):
    model, data = build({"name": "captioner", "params": {"hidden": 32, "embed_dim": 16, "attn_dim": 16,
                                                         "feature_dim": 16, "cnn_width": 8, "cnn_depth": 2,
                                                         "max_len": 6}}, fields=["image", "text"], samples=16)
    ctx = context(tmp_path, "interpretability.attention", limit=8)
    (row,) = list(AttentionAxis(examples=1, words=3).run(model, data, ctx))
    assert row.metric == "attention_entropy" and 0 <= row.value <= 1
    (art,) = ctx.take_artifacts()
    assert 1 <= len(art["data"]["tokens"]) <= 3
    width = Image.open(tmp_path / art["path"]).size[0]
    assert width > len(art["data"]["tokens"]) * 16  # one heatmap per word, side by side
