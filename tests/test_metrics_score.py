"""``polymodal score``: JSON out, and malformed inputs name the file and the entry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polymodal.cli import main

from test_metrics_caption import CORPUS, GOLDEN_CORPUS
from test_metrics_fidelity import GOLDEN_FIDELITY, fidelity_inputs


@pytest.fixture()
def coco(tmp_path):
    ann = {"annotations": [{"image_id": i, "caption": r} for i, (_, refs) in enumerate(CORPUS) for r in refs]}
    res = [{"image_id": i, "caption": c} for i, (c, _) in enumerate(CORPUS)]
    (tmp_path / "ann.json").write_text(json.dumps(ann), encoding="utf-8")
    (tmp_path / "res.json").write_text(json.dumps(res), encoding="utf-8")
    return tmp_path, ann, res


def test_score_captions_matches_coco_caption_and_writes_output(coco, capsys):
    d, _, _ = coco
    rc = main(["score", "captions", "--references", str(d / "ann.json"), "--predictions", str(d / "res.json"),
               "--per-image", "--output", str(d / "out.json")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out == json.loads((d / "out.json").read_text())
    for k, v in GOLDEN_CORPUS.items():
        assert abs(out[k] - v) < 1e-6, k
    assert [p["image_id"] for p in out["per_image"]] == list(range(len(CORPUS)))


@pytest.mark.parametrize("mutate, message", [
    (lambda ann, res: ("{not json", None), "ann.json: invalid JSON at line 1"),
    (lambda ann, res: (ann, res[:-1]), "res.json: no prediction for image_id 11"),
    (lambda ann, res: (ann, res + [{"image_id": 99, "caption": "x"}]), "res.json: entry [12]: image_id 99 has no reference"),
    (lambda ann, res: (ann, res + [{"image_id": 0, "caption": "x"}]), "res.json: entry [12]: a second prediction"),
    (lambda ann, res: (ann, [{"caption": "x"}] + res), "res.json: entry [0]: missing 'image_id'"),
    (lambda ann, res: ({"annotations": ann["annotations"][:3] + [{"image_id": 0, "caption": 5}]}, res),
     "ann.json: annotations[3]: 'caption' must be a string"),
    (lambda ann, res: ([], res), "ann.json: expected COCO annotation format"),
    (lambda ann, res: (ann, {"x": 1}), "res.json: expected COCO results format"),
])
def test_score_captions_malformed_inputs(coco, capsys, mutate, message):
    d, ann, res = coco
    new_ann, new_res = mutate(ann, res)
    (d / "ann.json").write_text(new_ann if isinstance(new_ann, str) else json.dumps(new_ann), encoding="utf-8")
    if new_res is not None:
        (d / "res.json").write_text(json.dumps(new_res), encoding="utf-8")
    rc = main(["score", "captions", "--references", str(d / "ann.json"), "--predictions", str(d / "res.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_score_fid_kid_is_from_arrays(tmp_path, capsys):
    real, fake, logits = fidelity_inputs()
    np.save(tmp_path / "a.npy", real)
    np.save(tmp_path / "b.npy", fake)
    np.save(tmp_path / "l.npy", logits)
    assert main(["score", "fid", "--real", str(tmp_path / "a.npy"), "--generated", str(tmp_path / "b.npy")]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(GOLDEN_FIDELITY["fid"], abs=1e-6)
    assert main(["score", "kid", "--real", str(tmp_path / "a.npy"), "--generated", str(tmp_path / "b.npy"),
                 "--subsets", "10", "--subset-size", "50"]) == 0
    assert json.loads(capsys.readouterr().out)["kid_mean"] == pytest.approx(GOLDEN_FIDELITY["kid_mean"], abs=1e-9)
    assert main(["score", "is", "--logits", str(tmp_path / "l.npy")]) == 0
    assert json.loads(capsys.readouterr().out)["is_mean"] == pytest.approx(GOLDEN_FIDELITY["is_mean"], abs=1e-9)


def test_score_array_errors_name_file_and_entry(tmp_path, capsys):
    real, fake, _ = fidelity_inputs()
    fake[4, 2] = np.nan
    np.save(tmp_path / "a.npy", real)
    np.save(tmp_path / "nan.npy", fake)
    np.save(tmp_path / "flat.npy", real[:, 0])
    assert main(["score", "fid", "--real", str(tmp_path / "a.npy"), "--generated", str(tmp_path / "nan.npy")]) == 2
    assert "nan.npy: generated features [N, D] holds NaN or infinity at index (4, 2)" in capsys.readouterr().err
    assert main(["score", "fid", "--real", str(tmp_path / "flat.npy"), "--generated", str(tmp_path / "a.npy")]) == 2
    assert "flat.npy: real features [N, D] must have 2 dimension(s)" in capsys.readouterr().err
    np.save(tmp_path / "t.npy", real[:30])
    np.save(tmp_path / "m.npy", np.array([0] * 29 + [500]))
    assert main(["score", "retrieval", "--image-embeddings", str(tmp_path / "a.npy"), "--text-embeddings",
                 str(tmp_path / "t.npy"), "--text-to-image", str(tmp_path / "m.npy")]) == 2
    assert "m.npy: entry [29] = 500 is not an image row" in capsys.readouterr().err
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    assert main(["score", "is", "--logits", str(tmp_path / "junk.npy")]) == 2
    assert "junk.npy: not a readable .npy array" in capsys.readouterr().err
