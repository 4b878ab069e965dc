"""WebDataset-format shards: map-style reading for suites, streaming split over ranks and DataLoader workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

from polymodal.errors import DataError
from polymodal.plugins import build_plugin_manager
from webdataset_shards import write_shards


@pytest.fixture(scope="module")
def plugins():
    return build_plugin_manager()


def test_shards_index_by_headers_and_decode_on_access(plugins, tmp_path):
    write_shards(tmp_path, shards=3, per_shard=4, prefix="train")
    write_shards(tmp_path, shards=1, per_shard=2, prefix="test")
    ds = plugins.build("datasets", "webdataset", root=str(tmp_path), split="train")
    assert len(ds) == 12 and ds.split == "train" and ds.fields == {"image": "image", "text": "text"}
    assert ds.targets == ["label"] and ds.num_classes == {"label": 2}
    item = ds[5]
    assert item["id"] == "train-00001.tar:0000100001" and item["label"] == 1
    assert item["image"].getpixel((0, 0)) == (0, 0, 200) and item["text"] == "a blue square"
    assert ds.texts("text")[:2] == ["a red square", "a blue square"]
    assert len(plugins.build("datasets", "webdataset", root=str(tmp_path), split="test")) == 2
    with pytest.raises(DataError, match=r"no shard matches 'nope-\*.tar'"):
        plugins.build("datasets", "webdataset", root=str(tmp_path), shards="nope-*.tar")


def test_a_corrupt_member_is_named(plugins, tmp_path):
    import io
    import tarfile

    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        for name, data in (("k1.png", b"not a png"), ("k1.cls", b"0")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ds = plugins.build("datasets", "webdataset", root=str(tmp_path), fields={"image": "png"})
    with pytest.raises(DataError, match=r"sample 'bad.tar:k1' \(bad.tar:k1.png\): cannot decode as image"):
        ds[0]
    assert plugins.build("datasets", "webdataset", root=str(tmp_path), fields={"image": "png"},
                         on_error="skip").skipped == 1


def test_streaming_over_2_ranks_and_2_workers_reads_every_sample_once(tmp_path):
    from polymodal_plugins.datasets.webdataset import StreamingShards

    shards = write_shards(tmp_path, shards=6, per_shard=5, compress=True)  # streaming reads compressed shards too
    seen: list[str] = []
    for rank in range(2):
        stream = StreamingShards(shards, {"image": "png", "text": "txt"}, rank=rank, world_size=2)
        loader = DataLoader(stream, batch_size=None, num_workers=2, collate_fn=lambda item: item)
        seen += [item["id"] for item in loader]
    assert len(seen) == 30 and len(set(seen)) == 30  # none dropped, none repeated


SUITE = """
name = "wds"
seeds = [0]
[defaults.data]
dataset = "webdataset"
root = "{root}"
val_split = false
batch_size = 4
workers = 2
modalities = {{ image = {{ size = 8 }} }}
[defaults.train]
epochs = 2
threads = 1
[runs.clf]
model.name = "fusion-classifier"
model.encoders.image = {{ name = "cnn", params = {{ width = 4, depth = 1, output_dim = 8 }} }}
[axes.task]
"""


def test_a_suite_trains_and_evaluates_from_shards(plugins, tmp_path):
    from polymodal.runner import RunOptions, run_suite

    write_shards(tmp_path, shards=2, per_shard=8, prefix="train")
    write_shards(tmp_path, shards=1, per_shard=6, prefix="test")
    (tmp_path / "suite.toml").write_text(SUITE.format(root=tmp_path))
    out = tmp_path / "out"
    _, manifest = run_suite(str(tmp_path / "suite.toml"), plugins=plugins, options=RunOptions(out=out, progress=False))
    assert manifest["failed_runs"] == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert any(r["axis"] == "task" and r["metric"] == "accuracy" for r in rows)


@pytest.mark.e2e
def test_torchrun_evaluation_of_shards_equals_one_process(tmp_path):
    """2 gloo ranks: every test sample evaluated once, so the figures equal a single process's."""
    from dist_launch import torchrun

    write_shards(tmp_path, shards=2, per_shard=8, prefix="train")
    write_shards(tmp_path, shards=3, per_shard=3, prefix="test")
    (tmp_path / "suite.toml").write_text(SUITE.format(root=tmp_path).replace("workers = 2", "workers = 0"))
    torchrun(["run", str(tmp_path / "suite.toml"), "--out", str(tmp_path / "dist"), "--device", "cpu", "-q"], tmp_path)
    from polymodal.runner import RunOptions, run_suite

    run_suite(str(tmp_path / "suite.toml"), plugins=build_plugin_manager(),
              options=RunOptions(out=tmp_path / "one", progress=False, device="cpu"))

    def figures(folder: Path) -> dict:
        rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        return {(r["axis"], r["metric"]): r["value"] for r in rows if r["axis"] == "task"}

    assert figures(tmp_path / "dist") == pytest.approx(figures(tmp_path / "one"))
