"""Dataset readers on files written here: COCO JSON, ImageFolder, JSONL/CSV manifests, clip folders."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from polymodal import get_plugins
from polymodal.data import build_modalities, fit_modalities, make_loader
from polymodal.errors import DataError

torch.set_num_threads(1)


def _img(path, colour=(10, 200, 30), size=(12, 12), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((*size, 3), np.uint8)
    arr[:] = colour
    Image.fromarray(arr).save(path, format=fmt)


def _wav(path, seconds=0.2, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.sin(np.arange(int(sr * seconds)) * 0.3).astype(np.float32), sr)


def _build(name, **kw):
    return get_plugins().build("datasets", name, **kw)


def test_coco_captions_reader_and_loader(tmp_path):
    _img(tmp_path / "images/val/1.png")
    _img(tmp_path / "images/val/2.jpg", colour=(250, 0, 0), fmt="JPEG")
    ann = {"images": [{"id": 1, "file_name": "1.png"}, {"id": 2, "file_name": "2.jpg"}],
           "annotations": [{"image_id": 1, "caption": "a green square"}, {"image_id": 1, "caption": "green box"},
                           {"image_id": 2, "caption": "a red square "}]}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/captions_val.json").write_text(json.dumps(ann))
    ds = _build("coco-captions", root=str(tmp_path), split="val")
    assert len(ds) == 2 and ds[0]["captions"] == ["a green square", "green box"] and ds[1]["text"] == "a red square"
    mods = build_modalities(ds.fields, {"image": {"size": 8}})
    fit_modalities(mods, ds)
    batch = next(iter(make_loader(ds, mods, batch_size=2)))
    assert batch.inputs["image"].data.shape == (2, 3, 8, 8)
    assert batch.targets["captions"][1] == ["a red square"] and batch.ids == [1, 2]


def test_coco_bad_samples_raise_or_skip_with_count(tmp_path):
    _img(tmp_path / "images/ok.png")
    (tmp_path / "images/broken.png").write_bytes(b"garbage")
    ann = {"images": [{"id": 1, "file_name": "ok.png"}, {"id": 2, "file_name": "broken.png"},
                      {"id": 3, "file_name": "missing.png"}, {"id": 4, "file_name": "ok.png"}],
           "annotations": [{"image_id": 1, "caption": "ok"}, {"image_id": 2, "caption": "x"},
                           {"image_id": 3, "caption": "y"}, {"image_id": 4, "caption": "  "}]}
    (tmp_path / "captions.json").write_text(json.dumps(ann))
    ds = _build("coco-captions", root=str(tmp_path))
    with pytest.raises(DataError, match=r"dataset 'coco-captions', sample 2, field 'image': .*broken.png"):
        ds[1]
    with pytest.raises(DataError, match=r"sample 3.*missing.png.*not found"):
        ds[2]
    with pytest.raises(DataError, match=r"sample 4, field 'text': empty caption"):
        ds[3]
    skipping = _build("coco-captions", root=str(tmp_path), on_error="skip")
    assert len(skipping) == 1 and skipping.skipped == 3
    assert [sid for sid, _ in skipping.skipped_samples] == [2, 3, 4]
    (tmp_path / "captions.json").write_text("{not json")
    with pytest.raises(DataError, match="invalid JSON"):
        _build("coco-captions", root=str(tmp_path))


def test_image_folder_classes_and_split(tmp_path):
    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        for i in range(2):
            _img(tmp_path / "train" / cls / f"{i}.png", colour)
    (tmp_path / "train/dog/notes.txt").write_text("ignored")
    ds = _build("image-folder", root=str(tmp_path), split="train")
    assert ds.class_names["label"] == ["cat", "dog"]
    assert [ds[i]["label"] for i in range(len(ds))] == [0, 0, 1, 1]
    assert np.asarray(ds[2]["image"])[0, 0].tolist() == [0, 0, 255]


def test_manifest_jsonl_every_modality_and_string_labels(tmp_path):
    _img(tmp_path / "img/a.png")
    _img(tmp_path / "img/b.gif", fmt="GIF")
    _wav(tmp_path / "snd/a.wav")
    sf.write(tmp_path / "snd/b.flac", np.zeros(800, np.float32) + 0.1, 8000)
    np.save(tmp_path / "vid_a.npy", np.zeros((4, 12, 12, 3), np.uint8))
    rows = [
        {"id": "a", "image": "img/a.png", "caption": "first", "audio": "snd/a.wav", "video": "vid_a.npy",
         "label": "cat", "score": 0.5, "split": "train"},
        {"id": "b", "image": "img/b.gif", "caption": "second", "audio": "snd/b.flac", "video": None,
         "label": "dog", "score": 1.5, "split": "train"},
        {"id": "c", "image": "img/a.png", "caption": "third", "audio": "snd/a.wav", "label": "cat", "score": 2,
         "split": "test"},
    ]
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = _build("manifest", root=str(tmp_path), split="train")
    assert ds.fields == {"image": "image", "caption": "text", "audio": "audio", "video": "video"}
    assert ds.targets == ["label", "score"] and ds.class_names["label"] == ["cat", "dog"]
    mods = build_modalities(ds.fields, {"image": {"size": 8}, "video": {"frames": 2, "size": 8}})
    fit_modalities(mods, ds)
    batch = next(iter(make_loader(ds, mods, batch_size=4)))
    assert batch.inputs["video"].mask.tolist() == [[True, True], [False, False]]  # b has no video
    assert batch.inputs["audio"].mask.sum(1).tolist()[0] > 0
    assert batch.targets["label"].tolist() == [0, 1]
    assert batch.targets["score"].dtype == torch.float32


def test_manifest_csv_and_errors(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("image,text,label\na.png,hello there,3\na.png,,4\n")
    ds = _build("manifest", root=str(tmp_path), path="m.csv")
    assert [ds[i]["label"] for i in range(2)] == [3, 4]
    assert ds[1]["text"] is None  # an empty cell is a missing modality
    (tmp_path / "bad.jsonl").write_text('{"image": "a.png", "label": 1}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: invalid JSON"):
        _build("manifest", root=str(tmp_path), path="bad.jsonl")
    (tmp_path / "escape.jsonl").write_text('{"image": "../outside.png", "label": 1}\n')
    esc = _build("manifest", root=str(tmp_path), path="escape.jsonl")
    with pytest.raises(DataError, match="outside the dataset root"):
        esc[0]
    (tmp_path / "abs.jsonl").write_text(json.dumps({"image": "/etc/passwd", "label": 1}) + "\n")
    with pytest.raises(DataError, match="outside the dataset root"):
        _build("manifest", root=str(tmp_path), path="abs.jsonl")[0]
    skipping = _build("manifest", root=str(tmp_path), path="abs.jsonl", on_error="skip")
    assert len(skipping) == 0 and skipping.skipped == 1


def test_symlink_out_of_root_refused(tmp_path):
    outside = tmp_path / "outside"
    _img(outside / "secret.png")
    root = tmp_path / "root"
    (root / "cls").mkdir(parents=True)
    (root / "cls" / "link.png").symlink_to(outside / "secret.png")
    ds = _build("image-folder", root=str(root))
    with pytest.raises(DataError, match="outside the dataset root"):
        ds[0]


def test_clip_folders_audio_with_captions_and_video(tmp_path):
    _wav(tmp_path / "audio/bird/1.wav")
    _wav(tmp_path / "audio/bird/2.flac")
    (tmp_path / "audio/bird/1.txt").write_text("a bird sings")
    _wav(tmp_path / "audio/car/3.wav")
    ds = _build("clip-folder", root=str(tmp_path / "audio"))
    assert ds.fields == {"audio": "audio", "text": "text"} and ds.class_names["label"] == ["bird", "car"]
    assert ds[0]["text"] == "a bird sings" and ds[1]["text"] is None and ds[2]["label"] == 1
    frames = [Image.fromarray(np.full((8, 8, 3), i * 50, np.uint8)) for i in range(3)]
    (tmp_path / "video/flat").mkdir(parents=True)
    frames[0].save(tmp_path / "video/flat/a.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "video/flat/b").mkdir()
    for i, f in enumerate(frames):
        f.save(tmp_path / f"video/flat/b/{i}.png")
    vds = _build("clip-folder", root=str(tmp_path / "video/flat"), modality="video")
    assert len(vds) == 2 and vds.targets == []
    mods = build_modalities(vds.fields, {"video": {"frames": 3, "size": 8}})
    batch = next(iter(make_loader(vds, mods, batch_size=2)))
    assert batch.inputs["video"].data.shape == (2, 3, 3, 8, 8)
