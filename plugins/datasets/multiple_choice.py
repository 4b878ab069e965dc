"""Multiple-choice visual questions, MMBench-like: a JSONL or TSV with options ``A``..``D``.

Columns: ``question``, ``image`` (a path relative to the root, or, as in the
MMBench TSV, the image itself base64-encoded), option columns ``A``, ``B``,
... (the first empty one ends the list), ``answer`` (a letter), optional
``index``/``id``, ``hint`` (prepended to the question) and ``category``.

Each sample is ``{"id", "image", "text"}`` with targets ``options`` (the
option texts), ``answer`` (the right option's index) and ``group`` (the
question's original id). With ``circular = true`` every question appears
once per rotation of its options (ids ``<id>@<k>``), and scoring counts a
group as right only if every rotation is (see
:mod:`polymodal_plugins.metrics.choice_scores`).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import attrs

from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal_plugins.datasets.files import IMAGE_SUFFIXES, FileDataset, Record
from polymodal_plugins.datasets.manifest import Manifest
from polymodal_plugins.metrics.choice_scores import LETTERS, rotate


class MultipleChoiceDataset(FileDataset):
    """Questions with lettered options (see the module docstring)."""

    name = "multiple-choice"
    fields = {"image": "image", "text": "text"}
    targets = ["options", "answer", "group"]

    def __init__(self, root: str | os.PathLike[str], split: str | None = None, path: str = "questions.jsonl",
                 circular: bool = False, on_error: str = "raise", limit: int | None = None) -> None:
        super().__init__(root, on_error)
        self.split = split
        file = resolve_inside(self.root, path, what=f"dataset {self.name!r}")
        rows = self._read_tsv(file) if file.suffix.lower() == ".tsv" else Manifest._read(self, file)
        for count, (n, row) in enumerate(rows.items()):
            if limit is not None and count >= limit:
                break
            self._add(row, n, path, circular)
        if not self.records:
            raise DataError(f"dataset {self.name!r}: no questions in {file}")
        self._finalise()

    def _read_tsv(self, file: Path) -> dict[int, dict[str, Any]]:
        if not file.is_file():
            raise DataError(f"dataset {self.name!r}: {str(file)!r} not found")
        # MMBench cells hold whole base64 images, far over csv's default 128 KiB field limit
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        try:
            with open(file, encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t")
                return {reader.line_num: dict(row) for row in reader}
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"dataset {self.name!r}: {file}: malformed TSV: {exc}") from None

    def _add(self, row: dict[str, Any], n: int, path: str, circular: bool) -> None:
        where = f"{path} line {n}"
        options = []
        for letter in LETTERS:
            value = row.get(letter)
            if value is None or (isinstance(value, float) and value != value) or str(value).strip() in ("", "nan"):
                break
            options.append(str(value).strip())
        question, image, answer = row.get("question"), row.get("image"), str(row.get("answer", "")).strip()
        if len(options) < 2 or not isinstance(question, str) or not isinstance(image, str) \
                or answer not in LETTERS[:len(options)]:
            raise DataError(f"dataset {self.name!r}: {where}: expected 'image', 'question', options 'A', 'B', ... "
                            f"and 'answer' one of their letters (got answer {answer!r}, {len(options)} options)")
        hint = row.get("hint")
        if isinstance(hint, str) and hint.strip() and hint.strip() != "nan":
            question = f"{hint.strip()}\n{question}"
        qid = row.get("index", row.get("id", n))
        value: Any = image if Path(image).suffix.lower() in IMAGE_SUFFIXES else self._decode(image, where)
        answer_index = LETTERS.index(answer)
        for k in range(len(options) if circular else 1):
            opts, ans = rotate(options, answer_index, k)
            self.records.append(Record(id=f"{qid}@{k}" if circular else qid, values={"image": value, "text": question},
                                       targets={"options": opts, "answer": ans, "group": qid}, where=where))

    def _decode(self, cell: str, where: str) -> bytes:
        try:
            return base64.b64decode(cell, validate=True)
        except (binascii.Error, ValueError):
            raise DataError(f"dataset {self.name!r}: {where}: 'image' is neither an image path "
                            f"({', '.join(IMAGE_SUFFIXES)}) nor base64 image data") from None

    def _load(self, rec: Record) -> dict[str, Any]:
        image = rec.values.get("image")
        if isinstance(image, bytes):
            from PIL import Image, UnidentifiedImageError

            try:
                pil = Image.open(io.BytesIO(image))
                pil.load()
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"dataset {self.name!r}, sample {rec.id!r} ({rec.where}): base64 image "
                                f"cannot be decoded: {exc}") from None
            rec = attrs.evolve(rec, values={**rec.values, "image": pil.convert("RGB")})
        return super()._load(rec)
