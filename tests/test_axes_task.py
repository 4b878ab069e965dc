"""task: classification figures vs scikit-learn definitions, captioning scores, text-to-image fidelity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from axes_models import build, context, trained

from polymodal.errors import ConfigError
from polymodal_plugins.axes.task import TaskAxis

CAPTIONER = {"name": "captioner", "params": {"hidden": 32, "embed_dim": 16, "attn_dim": 16, "feature_dim": 16,
                                             "cnn_width": 8, "cnn_depth": 2, "max_len": 8}}
T2I = {"name": "text-to-image", "params": {"width": 16, "text_dim": 32, "text_layers": 1, "image_size": 16}}


def balanced_accuracy_score(y, p):
    """scikit-learn's definition: mean recall over the classes present in ``y``."""
    return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))


def f1_score(y, p, average="macro"):
    """scikit-learn's macro F1: mean over labels present in ``y`` or ``p``."""
    scores = []
    for c in np.union1d(y, p):
        tp, fp, fn = np.sum((p == c) & (y == c)), np.sum((p == c) & (y != c)), np.sum((p != c) & (y == c))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def test_classification_matches_sklearn_definitions(tmp_path):
    model, data = trained("image", str(tmp_path.parent))
    ctx = context(tmp_path, "task", limit=96)
    rows = {r.metric: r for r in TaskAxis(ks=[2, 5]).run(model, data, ctx)}
    preds, labels = [], []
    with torch.no_grad():
        for batch in data.eval_batches("test"):
            preds.append(model.predict(batch).argmax(-1))
            labels.append(batch.targets["color"])
    p, y = torch.cat(preds)[:96].numpy(), torch.cat(labels)[:96].numpy()
    assert rows["accuracy"].value == pytest.approx(float(np.mean(p == y)))
    assert rows["balanced_accuracy"].value == pytest.approx(balanced_accuracy_score(y, p))
    assert rows["f1_macro"].value == pytest.approx(f1_score(y, p, average="macro"))
    assert rows["accuracy"].value <= rows["top2_accuracy"].value <= rows["top5_accuracy"].value
    assert rows["accuracy"].value > 0.5  # colour from a trained CNN
    assert rows["accuracy"].conditions["task"] == "classification"


def test_video_model_reports_video_task(tmp_path):
    model, data = build({"name": "fusion-classifier", "encoders": {
        "video": {"name": "video", "params": {"frame_encoder": "cnn", "frame_params": {"width": 8, "depth": 1,
                                                                                       "output_dim": 8}}}}},
        fields=["video"], samples=16)
    rows = list(TaskAxis(ks=[]).run(model, data, context(tmp_path, "task", limit=16)))
    assert {r.conditions["task"] for r in rows} == {"video"}
    assert {r.metric for r in rows} == {"accuracy", "balanced_accuracy", "f1_macro"}


class _Parrot(torch.nn.Module):
    """Captions every sample with its reference for the first half, a fixed wrong sentence after."""

    capabilities = frozenset({"caption"})
    caption_field, image_field = "text", "image"

    def __init__(self, data):
        super().__init__()
        self.texts = {s["id"]: s["text"] for s in (data.splits["test"][i] for i in range(len(data.splits["test"])))}

    def caption(self, batch, *, max_len=20, beam_size=1):
        return [self.texts[i] if int(i.rsplit("-", 1)[1]) % 2 == 0 else "zzz qqq" for i in batch.ids]


def test_captioning_scores_and_examples(tmp_path):
    model, data = build(CAPTIONER, fields=["image", "text"], samples=32)
    ctx = context(tmp_path, "task", limit=20)
    rows = {r.metric: r.value for r in TaskAxis(examples=2).run(_Parrot(data), data, ctx)}
    assert rows["rouge_l"] == pytest.approx(0.5)  # half exact (1.0), half disjoint (0.0)
    assert 0 < rows["bleu_4"] < 1 and rows["cider"] > 0
    examples = ctx.take_artifacts()
    assert [e["data"]["scores"]["rouge_l"] for e in examples] == [1.0, 0.0]
    assert examples[0]["data"]["generated"] == examples[0]["data"]["references"][0]
    assert all((tmp_path / e["path"]).exists() for e in examples)
    # The real captioner runs through the same path.
    real = {r.metric for r in TaskAxis(examples=0).run(model, data, ctx)}
    assert {"bleu_1", "bleu_4", "rouge_l", "cider"} <= real


def test_text_to_image_fidelity_and_clip_score(tmp_path):
    t2i, data = build(T2I, fields=["image", "text"], samples=48)
    classifier, _ = trained("image", str(tmp_path.parent))
    dual, _ = trained("dual", str(tmp_path.parent))
    ctx = context(tmp_path, "task", limit=48)
    # cnn features keep this test fast; the FID Inception path is tested in test_metrics_fid_inception.py
    rows = {r.metric: r for r in TaskAxis(clip_model=dual, is_classifier=classifier, examples=3,
                                          kid_subset_size=20, feature_extractor="cnn").run(t2i, data, ctx)}
    assert rows["fid"].extra["comparable_with_published"] is False
    assert rows["fid"].value > 0 and rows["kid"].extra["samples"] == 48
    assert 1.0 <= rows["inception_score"].value <= 6.0  # at most the classifier's number of classes
    assert 0.0 <= rows["clip_score"].value <= 2.5
    images = [a for a in ctx.take_artifacts() if a["kind"] == "generated_image"]
    assert len(images) == 3 and all(a["data"]["caption"] for a in images)
    # Real vs real scores FID ~ 0: the same pipeline on identical sets.
    from polymodal_plugins.metrics.fidelity import frechet_distance
    x = np.random.default_rng(0).normal(size=(64, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    no_is = {r.metric: r for r in TaskAxis(kid_subset_size=20, feature_extractor="cnn").run(t2i, data, ctx)}
    assert no_is["inception_score"].value is None and "is_classifier" in no_is["inception_score"].extra["reason"]


def test_model_without_task_capability_is_a_config_error(tmp_path):
    model, data = trained("dual", str(tmp_path.parent))
    with pytest.raises(ConfigError, match="none of the capabilities"):
        list(TaskAxis().run(model, data, context(tmp_path, "task", limit=4)))
