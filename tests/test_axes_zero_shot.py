"""zero-shot: prompt ensembling, unseen attribute combinations, candidate sets, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from axes_models import context, trained

from polymodal.errors import ConfigError
from polymodal_plugins.axes.samples import field_batch
from polymodal_plugins.axes.zero_shot import ZeroShotAxis, class_embeddings


def test_class_embeddings_average_normalised_templates(tmp_path):
    model, data = trained("dual", str(tmp_path.parent))
    templates = ["a picture of a {}", "there is a {}"]
    got = class_embeddings(model, data, "text", ["red circle", "blue square"], templates, torch.device("cpu"))
    for row, name in zip(got, ["red circle", "blue square"], strict=True):
        with torch.no_grad():
            each = F.normalize(model.embed(field_batch(data, "text", [t.format(name) for t in templates],
                                                      torch.device("cpu")), "text"), dim=-1)
        assert torch.allclose(row, F.normalize(each.mean(0), dim=0), atol=1e-5)
    assert torch.allclose(got.norm(dim=-1), torch.ones(2))


def test_unseen_combinations_and_attributes(tmp_path):
    model, data = trained("dual", str(tmp_path.parent))
    ctx = context(tmp_path, "zero-shot", limit=150)
    rows = {(r.metric, r.conditions["candidates"], r.conditions["target"]): r
            for tgt in ("combo", "color") for r in ZeroShotAxis(target=tgt).run(model, data, ctx)}
    unseen = rows[("accuracy", "split", "combo")]
    assert unseen.extra["classes"] == 5  # shapes holds out one colour per shape
    assert unseen.extra["split"] == "zeroshot" and unseen.conditions["split"] == "zeroshot"
    # Composes shape and colour it learnt separately: well above chance on never-seen pairs.
    assert unseen.value > 2 * unseen.extra["chance_top1"]
    assert rows[("accuracy", "all", "color")].value > 0.5
    for cand in ("all", "split"):
        assert rows[("top5_accuracy", cand, "combo")].value >= rows[("accuracy", cand, "combo")].value
    assert rows[("accuracy", "all", "combo")].extra["classes"] == 30


def test_bad_settings_are_config_errors(tmp_path):
    model, data = trained("dual", str(tmp_path.parent))
    with pytest.raises(ConfigError, match="templates"):
        ZeroShotAxis(templates=["no placeholder"])
    with pytest.raises(ConfigError, match="target 'nope'"):
        list(ZeroShotAxis(target="nope").run(model, data, context(tmp_path, "zero-shot", limit=4)))
    with pytest.raises(ConfigError, match="no split 'holdout'|unknown split 'holdout'"):
        list(ZeroShotAxis(split="holdout").run(model, data, context(tmp_path, "zero-shot", limit=4)))
