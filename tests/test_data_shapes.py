"""The embedded ``shapes`` world: determinism, splits, and that every modality really encodes the labels."""

from __future__ import annotations

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from polymodal import get_plugins
from polymodal.data import build_modalities, fit_modalities, make_loader
from polymodal.errors import DataError
from polymodal_plugins.datasets.shapes import _PITCH, _RGB, COLORS, COLORS_ZH, SHAPES, SHAPES_ZH, ShapesDataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def train():
    return ShapesDataset(split="train", num_samples=300, seed=7)


def test_deterministic_from_seed_and_split(train):
    again = ShapesDataset(split="train", num_samples=300, seed=7)
    assert np.array_equal(again._images, train._images) and np.array_equal(again._audio, train._audio)
    assert again._text == train._text
    other = ShapesDataset(split="train", num_samples=300, seed=8)
    assert not np.array_equal(other._images, train._images)
    test = ShapesDataset(split="test", num_samples=300, seed=7)
    assert not np.array_equal(test._images, train._images)


def test_zeroshot_combos_never_seen_in_train(train):
    zs = ShapesDataset(split="zeroshot", num_samples=200, seed=7)
    seen = {(train[i]["shape"], train[i]["color"]) for i in range(len(train))}
    unseen = {(zs[i]["shape"], zs[i]["color"]) for i in range(len(zs))}
    assert seen and unseen and not seen & unseen
    assert {s for s, _ in seen} == set(range(len(SHAPES))) and {c for _, c in seen} == set(range(len(COLORS)))
    assert {s for s, _ in unseen} == set(range(len(SHAPES)))
    assert all(zs[i]["combo"] == zs[i]["shape"] * len(COLORS) + zs[i]["color"] for i in range(20))
    assert len(zs.prompts("combo")) == len(zs.class_names["combo"])


def test_image_colour_matches_label(train):
    for i in range(40):
        item = train[i]
        img = item["image"].astype(np.float32)
        saturated = (img.max(-1) - img.min(-1)) > 80  # the shape; background and distractor are grey
        assert saturated.sum() > 10
        mean = img[saturated].mean(0)
        nearest = int(np.argmin(((_RGB - mean) ** 2).sum(1)))
        assert nearest == item["color"], (i, mean)


def test_video_moves_in_labelled_direction(train):
    for i in range(40):
        item = train[i]
        v = item["video"].astype(np.float32)
        sat = (v.max(-1) - v.min(-1)) > 80  # [K, H, W]
        ys, xs = np.mgrid[: v.shape[1], : v.shape[2]]
        cx = [(xs * s).sum() / s.sum() for s in sat]
        cy = [(ys * s).sum() / s.sum() for s in sat]
        dx, dy = cx[-1] - cx[0], cy[-1] - cy[0]
        direction = ["left", "right", "up", "down"][item["direction"]]
        expected = {"left": dx < -3, "right": dx > 3, "up": dy < -3, "down": dy > 3}[direction]
        assert expected, (i, direction, dx, dy)


def test_audio_pitch_encodes_colour(train):
    for i in range(40):
        item = train[i]
        if item["shape"] != 0 or item["direction"] in (2, 3):  # pure steady tones: circle, no glide
            continue
        clip = item["audio"]
        spectrum = np.abs(np.fft.rfft(clip.samples[0]))
        freqs = np.fft.rfftfreq(clip.samples.shape[1], 1 / clip.sample_rate)
        peak = freqs[spectrum.argmax()]
        assert abs(peak - _PITCH[item["color"]]) < 25, (i, peak)


def test_captions_name_the_attributes_in_both_languages(train):
    for i in range(50):
        item = train[i]
        assert SHAPES[item["shape"]] in item["text"] and COLORS[item["color"]] in item["text"]
        assert SHAPES_ZH[item["shape"]] in item["text_zh"] and COLORS_ZH[item["color"]] in item["text_zh"]


def test_loader_with_worker_and_all_modalities():
    ds = get_plugins().build("datasets", "shapes", split="val", num_samples=20, image_size=16, frames=4)
    mods = build_modalities(ds.fields, {"image": {"size": 16}, "video": {"frames": 4, "size": 16}})
    fit_modalities(mods, ds)
    batches = list(make_loader(ds, mods, batch_size=8, num_workers=1))
    assert [len(b) for b in batches] == [8, 8, 4]
    b = batches[0]
    assert b.inputs["image"].data.shape == (8, 3, 16, 16) and b.inputs["video"].data.shape == (8, 4, 3, 16, 16)
    assert b.targets["label"].tolist() == [ds[i]["label"] for i in range(8)]
    assert b.ids[0] == ds[0]["id"] and b.ids[0].endswith("-val-0")


def test_generation_is_fast_and_params_validated():
    start = time.perf_counter()
    ds = ShapesDataset(split="train", num_samples=2000)
    assert time.perf_counter() - start < 10.0  # ~0.5 s on one core; generous for shared CI machines
    assert len(ds) == 2000 and ds._videos.shape == (2000, 8, 32, 32, 3)
    with pytest.raises(DataError, match="unknown split 'dev'"):
        ShapesDataset(split="dev")
    with pytest.raises(IndexError):
        ds[2000]


def test_sample_ids_name_the_sample_not_only_its_position():
    """Two shapes datasets whose sample i differs never share an id (paired tests pair by id)."""
    build = lambda **kw: get_plugins().build("datasets", "shapes", split="test", **{"image_size": 8, **kw})  # noqa: E731
    plain, again, finer = build(num_samples=6), build(num_samples=6), build(num_samples=6, image_size=16)
    assert plain[0]["id"] == again[0]["id"] == finer[0]["id"]  # same scene at another resolution: same sample
    other = [build(num_samples=6, interaction=2), build(num_samples=6, seed=1), build(num_samples=7)]
    ids = {plain[0]["id"], *(d[0]["id"] for d in other)}
    assert len(ids) == 4
    assert build()[0]["id"] == "shapes-test-0"  # the defaults keep the short id
