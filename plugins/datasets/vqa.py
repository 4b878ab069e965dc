"""Visual question answering data: the VQAv2 questions + annotations pair, or a simple JSONL.

Each sample is ``{"id", "image", "text"}`` (the image and the question) with
the targets ``answers`` (every human answer, which VQA accuracy needs) and
``answer_type`` (for the per-type breakdown).

``layout = "vqav2"``: ``questions`` and ``annotations`` are the official JSON
files (relative to ``root``) and ``images`` a folder; an image path is
``image_pattern`` filled with the sample's ``image_id`` and ``split``
(default: the COCO names, ``COCO_{split}_{image_id:012d}.jpg``).
``layout = "jsonl"``: ``path`` holds one ``{"image", "question", "answers"}``
object per line (``answers`` a list of strings, or ``answer`` one string;
optional ``id``, ``answer_type``). Every problem names the file and line.
"""

from __future__ import annotations

import os

from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal_plugins.datasets.files import FileDataset, Record
from polymodal_plugins.datasets.manifest import Manifest

LAYOUTS = ("vqav2", "jsonl")


class VQADataset(FileDataset):
    """Images with questions and human answers (see the module docstring)."""

    name = "vqa"
    fields = {"image": "image", "text": "text"}
    targets = ["answers", "answer_type"]

    def __init__(self, root: str | os.PathLike[str], split: str | None = None, layout: str = "jsonl",
                 path: str = "questions.jsonl", questions: str | None = None, annotations: str | None = None,
                 images: str = "images", image_pattern: str = "COCO_{split}_{image_id:012d}.jpg",
                 on_error: str = "raise", limit: int | None = None) -> None:
        if layout not in LAYOUTS:
            raise DataError(f"dataset {self.name!r}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        super().__init__(root, on_error)
        self.split = split
        if layout == "vqav2":
            self._vqav2(split, questions, annotations, images, image_pattern)
        else:
            self._jsonl(path)
        if limit is not None:
            self.records = self.records[:limit]
        if not self.records:
            raise DataError(f"dataset {self.name!r}: no questions under {self.root}")
        self._finalise()

    def _vqav2(self, split: str | None, questions: str | None, annotations: str | None, images: str,
               pattern: str) -> None:
        from polymodal_plugins.metrics.vqa_files import read_vqa_annotations

        if questions is None or annotations is None:
            raise DataError(f"dataset {self.name!r}: layout 'vqav2' needs questions= and annotations= "
                            "(the official JSON files, relative to the root)")
        q_file = resolve_inside(self.root, questions, what=f"dataset {self.name!r}")
        a_file = resolve_inside(self.root, annotations, what=f"dataset {self.name!r}")
        for q in read_vqa_annotations(a_file, q_file):
            try:
                name = pattern.format(image_id=q.image_id, split=split or "")
            except (KeyError, ValueError, IndexError) as exc:
                raise DataError(f"dataset {self.name!r}: image_pattern {pattern!r} does not fit image_id "
                                f"{q.image_id!r}: {exc}") from None
            self.records.append(Record(id=q.question_id, values={"image": os.path.join(images, name), "text": q.question},
                                       targets={"answers": list(q.answers), "answer_type": q.answer_type},
                                       where=f"{annotations}, question_id {q.question_id!r}"))

    def _jsonl(self, path: str) -> None:
        file = resolve_inside(self.root, path, what=f"dataset {self.name!r}")
        for n, row in Manifest._read(self, file).items():
            answers = row.get("answers", [row["answer"]] if isinstance(row.get("answer"), str) else None)
            if not isinstance(row.get("image"), str) or not isinstance(row.get("question"), str) \
                    or not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
                raise DataError(f"dataset {self.name!r}: {file}, line {n}: expected 'image' (a path), 'question' "
                                "and 'answers' (a non-empty list of strings) or 'answer' (a string)")
            self.records.append(Record(id=row.get("id", n), values={"image": row["image"], "text": row["question"]},
                                       targets={"answers": answers, "answer_type": str(row.get("answer_type", "all"))},
                                       where=f"{path} line {n}"))
