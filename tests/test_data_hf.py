"""The Hugging Face ``datasets`` reader, offline, on parquet / imagefolder / audiofolder data written here."""

from __future__ import annotations

import io
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before datasets reads its config: nothing may reach the network

import datasets  # noqa: E402 - in the test extra, so a missing install fails here rather than skipping
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
from PIL import Image  # noqa: E402

from polymodal.plugins import build_plugin_manager  # noqa: E402


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 9), colour).save(buf, format="PNG")
    return buf.getvalue()


def _wav_bytes(freq: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.sin(np.arange(1600) * freq).astype(np.float32), 8000, format="WAV")
    return buf.getvalue()


def _parquet(path, n: int = 12) -> None:
    # Audio written as its Arrow storage (bytes, path) and cast: encoding through the feature needs torchcodec.
    features = datasets.Features({
        "image": datasets.Image(), "caption": datasets.Value("string"),
        "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        "label": datasets.ClassLabel(names=["red", "blue"]), "score": datasets.Value("float32"),
    })
    rows = {"image": [{"bytes": _png((200, 0, 0) if i % 2 == 0 else (0, 0, 200)), "path": None} for i in range(n)],
            "audio": [{"bytes": _wav_bytes(0.1 + 0.1 * (i % 2)), "path": None} for i in range(n)],
            "caption": [("a red" if i % 2 == 0 else "a blue") + " square" for i in range(n)],
            "label": [i % 2 for i in range(n)], "score": [float(i) for i in range(n)]}
    table = datasets.Dataset.from_dict(rows, features=features).cast_column("audio", datasets.Audio(decode=False))
    table.to_parquet(str(path))


@pytest.fixture(scope="module")
def plugins():
    return build_plugin_manager()


def test_parquet_columns_become_fields_and_classlabel_names(plugins, tmp_path):
    _parquet(tmp_path / "train.parquet")
    _parquet(tmp_path / "test.parquet", n=4)
    files = {"train": "train.parquet", "test": "test.parquet"}
    ds = plugins.build("datasets", "hf-datasets", path="parquet", root=str(tmp_path), data_files=files,
                       split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.fields == {"image": "image", "audio": "audio", "caption": "text"}
    assert ds.targets == ["label", "score"] and ds.class_names == {"label": ["red", "blue"]}
    assert len(ds) == 12 and ds.split == "train"
    item = ds[1]
    assert item["label"] == 1 and item["caption"] == "a blue square" and item["image"].size == (12, 9)
    assert item["audio"].sample_rate == 8000 and item["audio"].samples.shape == (1, 1600)
    assert ds.texts("caption")[:2] == ["a red square", "a blue square"]
    with pytest.raises(Exception, match=r"no split 'val'; it has train, test"):
        plugins.build("datasets", "hf-datasets", path="parquet", root=str(tmp_path), data_files=files, split="val",
                      cache_dir=str(tmp_path / "cache"))
    streamed = plugins.build("datasets", "hf-datasets", path="parquet", root=str(tmp_path), data_files=files,
                             split="test", streaming=True, max_samples=3)
    assert len(streamed) == 3 and streamed.class_names["label"] == ["red", "blue"]
    assert [item["label"] for item in streamed.iter_indices([0, 2])] == [0, 0]


def test_imagefolder_and_audiofolder(plugins, tmp_path):
    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 255, 0))):
        (tmp_path / "img" / "train" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8), colour).save(tmp_path / "img" / "train" / cls / "1.png")
        (tmp_path / "snd" / "train" / cls).mkdir(parents=True)
        sf.write(tmp_path / "snd" / "train" / cls / "1.wav", np.zeros(800, np.float32) + 0.1, 8000)
    img = plugins.build("datasets", "hf-datasets", path="imagefolder", root=str(tmp_path), data_dir="img",
                        split="train", cache_dir=str(tmp_path / "cache"))
    assert img.fields == {"image": "image"} and img.class_names["label"] == ["cat", "dog"]
    assert sorted(img[i]["label"] for i in range(2)) == [0, 1]
    snd = plugins.build("datasets", "hf-datasets", path="audiofolder", root=str(tmp_path), data_dir="snd",
                        split="train", cache_dir=str(tmp_path / "cache"))
    assert snd.fields == {"audio": "audio"} and snd[0]["audio"].samples.shape == (1, 800)


SUITE = """
name = "hf"
seeds = [0]
[defaults.data]
dataset = "hf-datasets"
root = "{root}"
params = {{ path = "parquet", data_files = {{ train = "train.parquet", test = "test.parquet" }}, cache_dir = "{root}/cache" }}
val_split = false
batch_size = 4
modalities = {{ image = {{ size = 8 }} }}
[defaults.train]
epochs = 2
threads = 1
[runs.clf]
model.name = "fusion-classifier"
model.encoders.image = {{ name = "cnn", params = {{ width = 4, depth = 1, output_dim = 8 }} }}
[axes.task]
"""


def test_a_suite_trains_and_evaluates_from_local_parquet(plugins, tmp_path):
    from polymodal.runner import RunOptions, run_suite

    _parquet(tmp_path / "train.parquet")
    _parquet(tmp_path / "test.parquet", n=6)
    (tmp_path / "suite.toml").write_text(SUITE.format(root=tmp_path))
    out = tmp_path / "out"
    _, manifest = run_suite(str(tmp_path / "suite.toml"), plugins=plugins, options=RunOptions(out=out, progress=False))
    assert manifest["failed_runs"] == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    task = [r for r in rows if r["axis"] == "task" and r["metric"] == "accuracy"]
    assert task and 0.0 <= task[0]["value"] <= 1.0
    assert [r.get("data_notes") for r in manifest["runs"]] == [None]  # real train/test splits: no warning


def test_data_inspect_reads_hf_datasets(tmp_path):
    import contextlib
    import io

    from polymodal.cli import main

    _parquet(tmp_path / "train.parquet", n=4)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["data", "inspect", "hf-datasets", "--root", str(tmp_path), "--param", 'path="parquet"',
                     "--param", 'data_files="train.parquet"', "--param", f'cache_dir="{tmp_path / "cache"}"', "--json"])
    report = json.loads(out.getvalue())[0]
    assert code == 0 and report["splits"]["all"]["labels"] == {"label": {"red": 2, "blue": 2}}
    assert report["batch"]["inputs"]["audio"]["shape"][0] == 4 and report["failures"] == []
