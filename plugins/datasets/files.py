"""Shared machinery of the on-disk dataset readers (COCO, ImageFolder, manifests, clip folders).

A reader lists *records* (sample id, field -> relative path or inline text,
target values); this base loads a record's files on ``__getitem__``, with
every path resolved inside the dataset root, and turns any failure into a
:class:`DataError` naming the dataset, the sample and the file.

``on_error="skip"`` validates every record once at construction by loading
it exactly as ``__getitem__`` would (a full decode, so truncated files are
caught too); bad samples are dropped and counted in ``skipped`` with their
reasons in ``skipped_samples``. The count is exact and known before any
training starts, which lazy skipping inside DataLoader workers could not give.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import attrs

from polymodal.errors import DataError
from polymodal.paths import resolve_inside

ON_ERROR = ("raise", "skip")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
VIDEO_SUFFIXES = (".gif", ".webp", ".npy")


@attrs.define
class Record:
    """One sample before loading: ``values`` maps a field to a path or an inline value."""

    id: Any
    values: dict[str, Any]
    targets: dict[str, Any] = attrs.field(factory=dict)
    #: Where the record came from, for error messages (e.g. ``manifest.jsonl line 7``).
    where: str | None = None


def load_field(kind: str, value: Any, root: Path) -> Any:
    """Load one field's raw value by modality kind; paths must stay inside ``root``."""
    if kind == "text":
        if isinstance(value, str):
            if not value.strip():
                raise DataError("empty caption")
            return value
        if isinstance(value, dict) and "path" in value:
            path = resolve_inside(root, value["path"])
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"{path}: cannot read text: {exc}") from None
            if not text.strip():
                raise DataError(f"{path}: empty caption")
            return text
        raise DataError(f"text must be a string, got {type(value).__name__}")
    if not isinstance(value, str | os.PathLike):
        raise DataError(f"{kind} field must be a file path, got {type(value).__name__}")
    path = resolve_inside(root, value)
    if kind == "image":
        from polymodal_plugins.modalities.image import open_image

        return open_image(path, max_pixels=50_000_000)
    if kind == "audio":
        from polymodal_plugins.modalities.audio import read_audio

        return read_audio(path, max_frames=48_000 * 600)
    if kind == "video":
        from polymodal_plugins.modalities.video import VideoModality

        return VideoModality().load(path)
    raise DataError(f"no loader for modality kind {kind!r}")


class FileDataset:
    """Base of the file readers: ``records`` + ``fields`` -> loaded samples."""

    name = "files"
    fields: dict[str, str]
    targets: list[str]

    def __init__(self, root: str | os.PathLike[str], on_error: str = "raise") -> None:
        if on_error not in ON_ERROR:
            raise DataError(f"dataset {self.name!r}: on_error must be one of {ON_ERROR}, got {on_error!r}")
        base = Path(root).expanduser()
        if not base.is_dir():
            raise DataError(f"dataset {self.name!r}: root {str(base)!r} is not a directory")
        self.root = base.resolve()
        self.on_error = on_error
        self.records: list[Record] = []
        self.skipped = 0
        self.skipped_samples: list[tuple[Any, str]] = []
        self.class_names: dict[str, list[str]] = {}
        #: Class count per class target, from the data (integer labels have counts but no names).
        self.num_classes: dict[str, int] = {}
        #: The split this object holds; None when the reader returned every sample (no split in the data).
        self.split: str | None = None

    def _finalise(self) -> None:
        """Call at the end of a reader's constructor, once ``records`` is filled."""
        if self.on_error != "skip":
            return
        keep = []
        for rec in self.records:
            try:
                self._load(rec)
            except DataError as exc:
                self.skipped_samples.append((rec.id, str(exc)))
            else:
                keep.append(rec)
        self.skipped = len(self.skipped_samples)
        self.records = keep

    def _load(self, rec: Record) -> dict[str, Any]:
        item: dict[str, Any] = {"id": rec.id}
        for field, kind in self.fields.items():
            value = rec.values.get(field)
            if value is None:
                item[field] = None  # missing modality: an all-false mask row after collation
                continue
            try:
                item[field] = load_field(kind, value, self.root)
            except DataError as exc:
                where = f" ({rec.where})" if rec.where else ""
                raise DataError(f"dataset {self.name!r}, sample {rec.id!r}{where}, field {field!r}: {exc}") from None
        item.update(rec.targets)
        return item

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._load(self.records[i])

    def texts(self, field: str, indices: Sequence[int] | None = None) -> list[str]:
        """Inline texts of ``field`` (for fitting a vocabulary) without opening any file.

        ``indices`` restricts them to some samples (the training part of a split the runner made).
        """
        if self.fields.get(field) != "text":
            raise DataError(f"dataset {self.name!r} has no text field {field!r}")
        out = []
        records = self.records if indices is None else [self.records[i] for i in indices]
        for r in records:
            value = r.values.get(field)
            if value is not None:
                try:
                    out.append(load_field("text", value, self.root))
                except DataError:
                    continue  # reported when the sample itself is loaded
        return out

    def target_values(self, name: str) -> list[Any]:
        """Every sample's value of target ``name``, without loading any file (for stratified splits)."""
        return [r.targets.get(name) for r in self.records]

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "root": str(self.root), "samples": len(self), "fields": self.fields,
                "targets": self.targets, "skipped": self.skipped}
