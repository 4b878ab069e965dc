"""VQA and multiple-choice readers: VQAv2 pair, JSONL, MMBench-like JSONL/TSV (base64 images), circular rotations."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from polymodal.errors import DataError
from polymodal_plugins.datasets.multiple_choice import MultipleChoiceDataset
from polymodal_plugins.datasets.vqa import VQADataset


def _png(path=None) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(buf, format="PNG")
    if path is not None:
        path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_vqav2_pair(tmp_path):
    (tmp_path / "images").mkdir()
    _png(tmp_path / "images" / "COCO_val2014_000000000042.jpg")
    (tmp_path / "q.json").write_text(json.dumps({"questions": [{"question_id": 5, "image_id": 42, "question": "What?"}]}))
    (tmp_path / "a.json").write_text(json.dumps({"annotations": [{
        "question_id": 5, "image_id": 42, "question_type": "what", "answer_type": "other",
        "answers": [{"answer": "red", "answer_id": i} for i in range(10)]}]}))
    ds = VQADataset(tmp_path, split="val2014", layout="vqav2", questions="q.json", annotations="a.json")
    s = ds[0]
    assert s["id"] == 5 and s["text"] == "What?" and s["answers"] == ["red"] * 10 and s["answer_type"] == "other"
    assert s["image"].size == (8, 6)
    with pytest.raises(DataError, match="needs questions= and annotations="):
        VQADataset(tmp_path, layout="vqav2")


def test_vqa_jsonl_and_errors(tmp_path):
    _png(tmp_path / "a.png")
    rows = [{"image": "a.png", "question": "Colour?", "answers": ["red", "red", "maroon"]},
            {"id": "q2", "image": "a.png", "question": "Shape?", "answer": "square", "answer_type": "other"}]
    (tmp_path / "questions.jsonl").write_text("\n".join(map(json.dumps, rows)))
    ds = VQADataset(tmp_path)
    assert len(ds) == 2 and ds[0]["answers"] == ["red", "red", "maroon"] and ds[1]["answers"] == ["square"]
    assert ds[1]["id"] == "q2" and ds[0]["answer_type"] == "all"
    (tmp_path / "bad.jsonl").write_text(json.dumps({"image": "a.png", "question": "x", "answers": []}))
    with pytest.raises(DataError, match=r"bad.jsonl, line 1: expected 'image'"):
        VQADataset(tmp_path, path="bad.jsonl")


def test_multiple_choice_tsv_base64_and_circular(tmp_path):
    b64 = base64.b64encode(_png()).decode()
    header = "index\tquestion\thint\tA\tB\tC\tD\tanswer\timage\n"
    lines = [f"1\tWhat colour?\tLook closely.\tred\tblue\tgreen\t\tA\t{b64}\n",
             f"2\tWhich shape?\t\tcircle\tsquare\ttriangle\tstar\tD\t{b64}\n"]
    (tmp_path / "mm.tsv").write_text(header + "".join(lines))
    ds = MultipleChoiceDataset(tmp_path, path="mm.tsv")
    assert len(ds) == 2
    s = ds[0]
    assert s["options"] == ["red", "blue", "green"] and s["answer"] == 0
    assert s["text"] == "Look closely.\nWhat colour?" and s["image"].size == (8, 6)
    circ = MultipleChoiceDataset(tmp_path, path="mm.tsv", circular=True)
    assert len(circ) == 3 + 4
    for i in range(3):
        r = circ[i]
        assert r["options"][r["answer"]] == "red" and r["group"] == "1" and r["id"] == f"1@{i}"
    assert {tuple(circ[i]["options"]) for i in range(3)} == {("red", "blue", "green"), ("blue", "green", "red"),
                                                             ("green", "red", "blue")}


def test_multiple_choice_jsonl_errors(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "q.jsonl").write_text(json.dumps({"image": "a.png", "question": "?", "A": "x", "B": "y", "answer": "C"}))
    with pytest.raises(DataError, match=r"q.jsonl line 1: expected 'image', 'question', options"):
        MultipleChoiceDataset(tmp_path, path="q.jsonl")
    (tmp_path / "q.jsonl").write_text(json.dumps({"image": "not base64!", "question": "?", "A": "x", "B": "y",
                                                  "answer": "B"}))
    with pytest.raises(DataError, match="neither an image path"):
        MultipleChoiceDataset(tmp_path, path="q.jsonl")
