"""ImageFolder classification: ``root[/split]/<class>/<image>``, classes sorted by name.

Every sub-folder is a class, so a sub-folder that holds no image (an empty
folder, a ``wheel/`` of downloads) is an error naming it rather than a class
with no samples that silently shifts every label after it. ``classes=``
lists the class folders explicitly (in label order) and ignores the rest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal_plugins.datasets.files import IMAGE_SUFFIXES, FileDataset, Record


class ImageFolder(FileDataset):
    """One sample per image file; ``label`` is the index of its class folder."""

    name = "image-folder"
    fields = {"image": "image"}
    targets = ["label"]

    def __init__(self, root: str | os.PathLike[str], split: str | None = None, on_error: str = "raise",
                 classes: Sequence[str] | None = None) -> None:
        super().__init__(root, on_error)
        base = resolve_inside(self.root, split, what=f"dataset {self.name!r}") if split else self.root
        if not base.is_dir():
            raise DataError(f"dataset {self.name!r}: split folder {str(base)!r} does not exist")
        self.split = split
        folders = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
        if classes is not None:
            names = [str(c) for c in classes]
            missing = [c for c in names if c not in folders]
            if missing:
                raise DataError(f"dataset {self.name!r}: classes {missing} have no folder in {base} "
                                f"(folders: {', '.join(folders) or 'none'})")
        else:
            names = folders
        if not names:
            raise DataError(f"dataset {self.name!r}: {base} has no class sub-folders")
        files = {c: sorted(f for f in (base / c).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
                 for c in names}
        not_classes = [c for c in names if not files[c]]
        if not_classes:
            raise DataError(f"dataset {self.name!r}: {base}: sub-folder(s) {', '.join(c + '/' for c in not_classes)} "
                            f"hold no images ({', '.join(IMAGE_SUFFIXES)}), so they cannot be classes; remove them "
                            f"or list the class folders with classes = [...]")
        self.class_names = {"label": names}
        self.num_classes = {"label": len(names)}
        for label, cls in enumerate(names):
            for f in files[cls]:
                rel = os.path.relpath(f, self.root)
                self.records.append(Record(id=rel, values={"image": rel}, targets={"label": label}))
        self._finalise()
