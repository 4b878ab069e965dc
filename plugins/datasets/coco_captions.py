"""COCO-style captions: an annotation JSON plus an image folder.

The JSON has ``images`` (``id``, ``file_name``) and ``annotations``
(``image_id``, ``caption``), as in ``captions_train2017.json``. One sample
per image: ``image``, ``text`` (its first caption, for training a dual
encoder) and the target ``captions`` (every reference, for caption metrics).
"""

from __future__ import annotations

import json
import os
from typing import Any

from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal_plugins.datasets.files import FileDataset, Record


class CocoCaptions(FileDataset):
    """Images with reference captions (``annotations`` and ``images`` are relative to ``root``)."""

    name = "coco-captions"
    fields = {"image": "image", "text": "text"}
    targets = ["captions"]

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = None,
        annotations: str | None = None,
        images: str | None = None,
        on_error: str = "raise",
        limit: int | None = None,
    ) -> None:
        super().__init__(root, on_error)
        self.split = split
        ann_rel = annotations or (f"annotations/captions_{split}.json" if split else "captions.json")
        img_rel = images if images is not None else (f"images/{split}" if split else "images")
        ann_path = resolve_inside(self.root, ann_rel, what=f"dataset {self.name!r}")
        image_dir = resolve_inside(self.root, img_rel, what=f"dataset {self.name!r}")
        try:
            data = json.loads(ann_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"dataset {self.name!r}: annotation file {str(ann_path)!r} not found"
                            f"{_suggest_json(self.root)}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"dataset {self.name!r}: {ann_path}: invalid JSON: {exc}") from None
        except RecursionError:
            raise DataError(f"dataset {self.name!r}: {ann_path}: invalid JSON: nested too deeply") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
                or not isinstance(data.get("annotations"), list):
            raise DataError(f"dataset {self.name!r}: {ann_path}: expected an object with 'images' and 'annotations' lists")
        captions: dict[Any, list[str]] = {}
        for k, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict) or "image_id" not in ann or not isinstance(ann.get("caption"), str):
                raise DataError(f"dataset {self.name!r}: {ann_path}: annotations[{k}] needs 'image_id' and a string 'caption'")
            captions.setdefault(ann["image_id"], []).append(ann["caption"].strip())
        rel_images = os.path.relpath(image_dir, self.root)
        for k, img in enumerate(data["images"]):
            if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
                raise DataError(f"dataset {self.name!r}: {ann_path}: images[{k}] needs 'id' and a string 'file_name'")
            refs = captions.get(img["id"], [])
            self.records.append(Record(
                id=img["id"],
                # An image with no caption gets "" so the sample is reported as an empty caption.
                values={"image": os.path.join(rel_images, img["file_name"]), "text": refs[0] if refs else ""},
                targets={"captions": refs},
            ))
            if limit is not None and len(self.records) >= limit:
                break
        self._finalise()


def _suggest_json(root: Any) -> str:
    """A hint naming the JSON files that are there (the default name rarely matches a download)."""
    found = sorted(os.path.relpath(p, root) for p in root.rglob("*.json"))[:5]
    if not found:
        return "; there is no .json file under the root"
    return f"; JSON files under the root: {', '.join(found)} (pass annotations = {found[0]!r})"
