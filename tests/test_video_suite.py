"""A video classification suite end to end on real .mp4/.webm files: a ``clip-folder`` of class
sub-folders, a fusion classifier with the ``video`` encoder trained from scratch, and the task,
noise (temporal corruptions: frame drops and shuffles) and importance axes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from needs import need

try:
    import av
except ImportError:  # pragma: no cover - the test extra installs it
    av = None

from video_testkit import write_clip

SUITE = """
name = "video-tiny"
seeds = [0]
eval_split = "test"

[defaults.data]
dataset = "clip-folder"
root = "{root}"
params = {{ modality = "video" }}
train_split = "train"
val_split = "test"
test_split = "test"
batch_size = 8
modalities = {{ video = {{ frames = 4, size = 16 }} }}

[defaults.train]
epochs = 4
optimizer = {{ name = "adamw", lr = 1e-2 }}

[runs.video]
axes = ["task", "noise", "importance"]
model.name = "fusion-classifier"
model.encoders.video = {{ name = "video", params = {{ frame_params = {{ width = 8, depth = 2, output_dim = 16 }} }} }}

[axes.task]

[axes.noise]
axis = "robustness.noise"
severities = [1, 5]
corruptions = {{ video = ["frame_drop", "frame_shuffle"] }}

[axes.importance]
axis = "interpretability.importance"
attribution_samples = 8
methods = ["integrated_gradients", "occlusion"]
"""


def _clip(bright: bool, seed: int) -> np.ndarray:
    """8 frames at 16x16: a square moving over a dark or a bright background (the class)."""
    rng = np.random.default_rng(seed)
    frames = np.full((8, 16, 16, 3), 200 if bright else 40, np.uint8)
    frames += rng.integers(0, 30, frames.shape, dtype=np.uint8)
    for i in range(8):
        frames[i, 4:10, i:i + 6] = 120
    return frames


@pytest.fixture(scope="module")
def video_results(tmp_path_factory):
    need(av is not None, "PyAV is not installed: pip install -c constraints.txt -e '.[test]'")
    from polymodal.cli import main
    from polymodal.plugins import get_plugins

    root = tmp_path_factory.mktemp("video-suite")
    for split, n in (("train", 8), ("test", 4)):
        for cls in ("bright", "dark"):
            (root / "data" / split / cls).mkdir(parents=True)
            for j in range(n):
                suffix = ".mp4" if j % 2 else ".webm"
                write_clip(root / "data" / split / cls / f"{j}{suffix}", _clip(cls == "bright", 100 * j + len(split)))
    suite = root / "video.toml"
    suite.write_text(SUITE.format(root=root / "data"))
    out = root / "out"
    try:
        code = main(["run", str(suite), "--out", str(out), "--no-report", "-q", "--fail-fast"])
    finally:
        get_plugins(refresh=True)
    assert code == 0
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


def test_task_accuracy_on_video_files(video_results):
    acc = next(r for r in video_results if r["axis"] == "task" and r["metric"] == "accuracy")
    assert acc["value"] == 1.0  # background brightness is trivially learnable from decoded frames


def test_noise_axis_applies_temporal_corruptions(video_results):
    rows = [r for r in video_results if r["axis"] == "robustness.noise" and r["metric"] == "accuracy"]
    seen = {(r["conditions"].get("corruption"), r["conditions"]["severity"]) for r in rows}
    assert {("frame_drop", 1), ("frame_drop", 5), ("frame_shuffle", 1), ("frame_shuffle", 5)} <= seen


def test_importance_axis_occludes_frames(video_results):
    rows = [r for r in video_results if r["axis"] == "interpretability.importance"]
    drops = sorted((r["conditions"]["segment"], r["value"]) for r in rows if r["metric"] == "segment_prob_drop")
    assert [s for s, _ in drops] == [0, 1, 2, 3]  # one part per sampled frame (4 frames, time_segments 8)
    spread = next(r for r in rows if r["metric"] == "segment_importance_spread")
    values = [v for _, v in drops]
    assert spread["conditions"]["modality"] == "video" and spread["conditions"]["method"] == "time_occlusion"
    assert abs(spread["value"] - (max(values) - min(values))) < 1e-12
    assert any(r["metric"] == "attribution_share" and r["value"] is not None for r in rows)
