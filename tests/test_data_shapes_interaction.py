"""The shapes interaction task: the label needs both modalities, neither alone is above chance."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.errors import DataError
from polymodal_plugins.datasets.shapes import CUES, ShapesDataset


def _best_single_cue_accuracy(cue: np.ndarray, target: np.ndarray) -> float:
    """Accuracy of the best predictor that sees only ``cue`` (the majority target per cue value)."""
    hits = 0
    for v in np.unique(cue):
        hits += np.bincount(target[cue == v]).max()
    return hits / len(target)


def test_interaction_off_leaves_every_field_unchanged():
    plain = ShapesDataset(split="test", num_samples=40, seed=3)
    off = ShapesDataset(split="test", num_samples=40, seed=3, interaction=0)
    on = ShapesDataset(split="test", num_samples=40, seed=3, interaction=3)
    for i in range(40):
        a, b, c = plain[i], off[i], on[i]
        assert np.array_equal(a["image"], b["image"]) and a["text"] == b["text"]
        assert "interaction" not in a and "interaction" in c
        for key in ("shape", "color", "size", "direction", "label"):
            assert a[key] == c[key]
        assert c["text"].startswith(a["text"]) and c["text"].endswith(CUES[on._cue_text[i]])
        assert on._cue_text[i] == (c["interaction"] - on._cue_image[i]) % 3  # flip = 0: cues determine the label
    assert "interaction" in on.targets and "interaction" not in plain.targets
    assert on.class_names["interaction"] == ["interaction 0", "interaction 1", "interaction 2"]


@pytest.mark.parametrize("k", [2, 4])
def test_neither_cue_alone_is_above_chance_but_both_decide(k):
    ds = ShapesDataset(split="train", num_samples=4000, seed=0, interaction=k)
    target = np.array([ds[i]["interaction"] for i in range(len(ds))])
    chance = np.bincount(target).max() / len(target)
    for cue in (ds._cue_image, ds._cue_text):
        # the best single-cue predictor stays within sampling error of chance (1/k)
        assert _best_single_cue_accuracy(cue, target) < chance + 3 * np.sqrt(0.25 / len(target)) + 0.01
    assert np.array_equal((ds._cue_image + ds._cue_text) % k, target)
    # the image cue is visible: mean background brightness rises with the level
    corner = np.array([ds[i]["image"][:3, :3].mean() for i in range(len(ds))])
    levels = [corner[ds._cue_image == v].mean() for v in range(k)]
    assert all(b > a + 10 for a, b in zip(levels, levels[1:]))


def test_flip_sets_the_accuracy_ceiling():
    ds = ShapesDataset(split="train", num_samples=4000, seed=1, interaction=2, interaction_flip=0.4)
    target = np.array([ds[i]["interaction"] for i in range(len(ds))])
    agree = np.mean((ds._cue_image + ds._cue_text) % 2 == target)
    assert agree == pytest.approx(1 - 0.4 * (2 - 1) / 2, abs=0.03)


@pytest.mark.parametrize("kwargs", [{"interaction": 1}, {"interaction": 99}, {"interaction": 2, "interaction_flip": 2},
                                    {"interaction": 2, "interaction_contrast": 0}])
def test_bad_interaction_parameters_are_one_line_errors(kwargs):
    with pytest.raises(DataError, match="interaction must be"):
        ShapesDataset(split="test", num_samples=4, **kwargs)
