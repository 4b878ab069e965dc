"""Batch preprocessing (``Modality.preprocess_batch``) gives exactly the per-sample pipeline's batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import polymodal
from polymodal.data import AudioClip, Collator, build_modalities, fit_modalities
from polymodal.errors import DataError
from polymodal.testing import check_modality

SHAPES = polymodal.get_plugins().build("datasets", "shapes", split="test", num_samples=6, image_size=16)
FIELDS = {"image": "image", "text": "text", "audio": "audio", "video": "video"}


def _modalities() -> dict[str, Any]:
    mods = build_modalities(FIELDS, {"image": {"size": 16}, "video": {"size": 16}})
    fit_modalities(mods, SHAPES)
    return mods


def _per_sample(mods: dict[str, Any], samples: list[dict[str, Any]]) -> dict[str, Any]:
    """What the collator made before preprocess_batch: preprocess each value, then collate."""
    return {f: m.collate([None if s.get(f) is None else m.preprocess(m.load(s[f])) for s in samples])
            for f, m in mods.items()}


@pytest.mark.parametrize("missing", [None, 2])
def test_builtin_modalities_batch_exactly_as_per_sample(missing: int | None) -> None:
    mods = _modalities()
    samples = [dict(SHAPES[i]) for i in range(len(SHAPES))]
    if missing is not None:
        for f in FIELDS:
            samples[missing][f] = None
    for f, m in mods.items():  # each built-in takes the batch path on shapes' in-memory values
        assert m.preprocess_batch([None if s[f] is None else m.load(s[f]) for s in samples]) is not None, f
    got = Collator(mods, ["label"])(samples)
    want = _per_sample(mods, samples)
    for f in FIELDS:
        assert got.inputs[f].data.shape == want[f].data.shape, f
        assert torch.equal(got.inputs[f].data, want[f].data), f
        assert torch.equal(got.inputs[f].mask, want[f].mask), f
        assert got.inputs[f].data.is_contiguous(), f
        assert got.inputs[f].meta == want[f].meta, f


def test_inputs_the_batch_path_declines_go_per_sample_with_the_same_values() -> None:
    mods = _modalities()
    image, audio = mods["image"], mods["audio"]
    rng = np.random.default_rng(0)
    mixed = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), rng.integers(0, 255, (24, 20, 3), dtype=np.uint8),
             Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))]
    assert image.preprocess_batch(mixed) is None  # another size (resized) and a PIL image
    samples = [{"id": i, "image": v} for i, v in enumerate(mixed)]
    got = Collator({"image": image})(samples)
    assert torch.equal(got.inputs["image"].data, _per_sample({"image": image}, samples)["image"].data)
    stereo = AudioClip(rng.standard_normal((2, 800)).astype(np.float32), 8000)
    assert audio.preprocess_batch([stereo]) is None  # mixing channels goes the per-sample way
    same_size = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(2)]
    assert image.preprocess_batch(same_size) is not None
    check_modality(image, same_size)  # the checker holds preprocess_batch to the per-sample batch
    check_modality(mods["text"], ["a red circle", "a blue square moving left"])


def test_a_bad_sample_in_a_batch_is_still_named() -> None:
    mods = _modalities()
    samples = [dict(SHAPES[i]) for i in range(3)]
    clip = samples[1]["audio"]
    bad = clip.samples.copy()
    bad[0, 5] = np.nan
    samples[1]["audio"] = AudioClip(bad, clip.sample_rate)
    with pytest.raises(DataError, match=rf"sample '{samples[1]['id']}', field 'audio'.*NaN"):
        Collator({"audio": mods["audio"]})(samples)


def test_the_modality_checker_refuses_a_batch_path_that_differs() -> None:
    from polymodal.contract_checks import ContractError

    text = _modalities()["text"]

    class OffByOne(type(text)):  # type: ignore[misc]
        def preprocess_batch(self, raws: list[Any]) -> Any:
            out = super().preprocess_batch(raws)
            out.data[0, 0] += 1
            return out

    wrong = OffByOne(vocab=text.vocab)
    with pytest.raises(ContractError, match="preprocess_batch"):
        check_modality(wrong, ["a red circle", "a blue square"])
