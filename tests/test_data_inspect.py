"""``polymodal data inspect`` on every built-in reader, and ``polymodal data preview``."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from polymodal.cli import main


def _img(path: Path, colour=(200, 30, 30), size=(12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.sin(np.arange(1600) * 0.3).astype(np.float32), 8000)


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


def _inspect(*args: str) -> tuple[int, dict]:
    code, text = _cli("data", "inspect", *args, "--json")
    reports = json.loads(text)
    assert len(reports) == 1
    return code, reports[0]


def test_inspect_manifest_reports_fields_labels_batch_and_every_failure(tmp_path):
    _img(tmp_path / "a.png")
    _wav(tmp_path / "a.wav")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    rows = [{"id": f"s{i}", "image": "a.png", "audio": "a.wav", "caption": "a red square", "label": "ab"[i % 2]}
            for i in range(5)] + [{"id": "bad", "image": "bad.png", "audio": "a.wav", "caption": "x", "label": "a"}]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, rep = _inspect("manifest", "--root", str(tmp_path))
    assert code == 1  # a failing sample is a non-zero exit, so CI can gate on it
    assert rep["fields"] == {"image": "image", "audio": "audio", "caption": "text"}
    assert rep["splits"]["all"] == {"samples": 6, "labels": {"label": {"a": 4, "b": 2}}}
    assert rep["batch"]["inputs"]["image"]["shape"] == [5, 3, 32, 32]  # one batch of the samples that load
    assert rep["batch"]["inputs"]["audio"]["shape"][0] == 5
    assert [(f["index"], "manifest.jsonl line 6" in f["error"]) for f in rep["failures"]] == [(5, True)]
    code, text = _cli("data", "inspect", "manifest", "--root", str(tmp_path))
    assert "label: a=4, b=2" in text and "failing samples: 1" in text and "sample 'bad'" in text


def test_inspect_every_other_builtin_reader(tmp_path):
    # image-folder, with real splits asked for
    for split in ("train", "val"):
        _img(tmp_path / "folders" / split / "cat" / "1.png")
        _img(tmp_path / "folders" / split / "dog" / "1.png", colour=(0, 0, 200))
    code, rep = _inspect("image-folder", "--root", str(tmp_path / "folders"), "--splits", "train,val")
    assert code == 0 and sorted(rep["splits"]) == ["train", "val"]
    assert rep["splits"]["val"]["labels"] == {"label": {"cat": 1, "dog": 1}}
    # coco-captions
    coco = tmp_path / "coco"
    _img(coco / "images" / "1.jpg")
    (coco / "captions.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "1.jpg"}],
                                                    "annotations": [{"image_id": 1, "caption": "a red box"}]}))
    code, rep = _inspect("coco-captions", "--root", str(coco))
    assert code == 0 and rep["splits"]["all"]["samples"] == 1 and rep["batch"]["targets"]["captions"] == "list of 1"
    # clip-folder
    _wav(tmp_path / "clips" / "dog" / "1.wav")
    _wav(tmp_path / "clips" / "cat" / "1.wav")
    code, rep = _inspect("clip-folder", "--root", str(tmp_path / "clips"))
    assert code == 0 and rep["modalities"] == {"audio": "audio"} and rep["targets"]["label"]["num_classes"] == 2
    # speech (manifest layout)
    _wav(tmp_path / "speech" / "u1.wav")
    (tmp_path / "speech" / "manifest.jsonl").write_text(json.dumps({"audio": "u1.wav", "text": "hello there"}) + "\n")
    code, rep = _inspect("speech", "--root", str(tmp_path / "speech"))
    assert code == 0 and rep["fields"] == {"audio": "audio", "text": "text"} and rep["failures"] == []
    # webdataset shards
    from webdataset_shards import write_shards

    write_shards(tmp_path / "shards", shards=2, per_shard=2)
    code, rep = _inspect("webdataset", "--root", str(tmp_path / "shards"))
    assert code == 0 and rep["splits"]["all"]["labels"] == {"label": {"0": 2, "1": 2}}
    # shapes (generated, no root)
    code, rep = _inspect("shapes", "--param", "num_samples=6", "--param", "image_size=16", "--param", "frames=2")
    assert code == 0 and rep["splits"]["all"]["samples"] == 6 and rep["batch"]["inputs"]["video"]["shape"][0] == 6


def test_inspect_a_suite_shows_the_data_each_run_trains_on(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text("""
name = "s"
[defaults.data]
dataset = "shapes"
params = { num_samples = 8, image_size = 16, frames = 2 }
[runs.clf]
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn" }
[axes.task]
""")
    code, rep = _inspect(str(suite))
    assert code == 0 and rep["label"] == "clf" and list(rep["modalities"]) == ["image"]
    assert set(rep["splits"]) == {"train", "val", "test"} and rep["notes"] == []


def test_preview_embeds_images_audio_frames_and_captions(tmp_path):
    _img(tmp_path / "a.png")
    _wav(tmp_path / "a.wav")
    np.save(tmp_path / "v.npy", np.zeros((4, 8, 8, 3), np.uint8))
    (tmp_path / "manifest.jsonl").write_text(json.dumps(
        {"id": "x", "image": "a.png", "audio": "a.wav", "video": "v.npy", "caption": "<b>red</b>", "label": "cat"}) + "\n")
    out = tmp_path / "page" / "p.html"
    code, text = _cli("data", "preview", "manifest", "--root", str(tmp_path), "--out", str(out))
    assert code == 0 and text.strip() == str(out)
    html = out.read_text()
    assert html.count("data:image/png;base64,") == 1 + 4  # the image and four frames
    assert "data:audio/wav;base64," in html and "&lt;b&gt;red&lt;/b&gt;" in html and "<td>cat</td>" in html


def test_inspect_names_an_unknown_target(capsys):
    code, _ = _cli("data", "inspect", "manifesto")
    assert code == 2 and "did you mean 'manifest'" in capsys.readouterr().err
