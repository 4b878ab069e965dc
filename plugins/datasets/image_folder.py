"""ImageFolder classification: ``root[/split]/<class>/<image>``, classes sorted by name."""

from __future__ import annotations

import os

from polymodal.errors import DataError
from polymodal.paths import resolve_inside
from polymodal_plugins.datasets.files import IMAGE_SUFFIXES, FileDataset, Record


class ImageFolder(FileDataset):
    """One sample per image file; ``label`` is the index of its class folder."""

    name = "image-folder"
    fields = {"image": "image"}
    targets = ["label"]

    def __init__(self, root: str | os.PathLike[str], split: str | None = None, on_error: str = "raise") -> None:
        super().__init__(root, on_error)
        base = resolve_inside(self.root, split, what=f"dataset {self.name!r}") if split else self.root
        if not base.is_dir():
            raise DataError(f"dataset {self.name!r}: split folder {str(base)!r} does not exist")
        classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise DataError(f"dataset {self.name!r}: {base} has no class sub-folders")
        self.class_names = {"label": classes}
        for label, cls in enumerate(classes):
            for f in sorted((base / cls).iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    rel = os.path.relpath(f, self.root)
                    self.records.append(Record(id=rel, values={"image": rel}, targets={"label": label}))
        self._finalise()
