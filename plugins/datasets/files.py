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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from polymodal.errors import DataError
from polymodal.traits import traits_of

T = TypeVar("T")

ON_ERROR = ("raise", "skip")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
VIDEO_SUFFIXES = (".gif", ".webp", ".npy", ".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")


@attrs.define
class Record:
    """One sample before loading: ``values`` maps a field to a path or an inline value."""

    id: Any
    values: dict[str, Any]
    targets: dict[str, Any] = attrs.field(factory=dict)
    #: Where the record came from, for error messages (e.g. ``manifest.jsonl line 7``).
    where: str | None = None


def load_field(kind: str, value: Any, root: Path, modality: Any = None) -> Any:
    """Load one field's raw value with the registered modality ``kind``; paths must stay inside ``root``.

    The modality's own ``load`` reads the value, so a dataset reads any
    registered modality (a third-party ``depth`` as well as ``image``) and
    never needs to know one by name.
    """
    if modality is None:
        modality = modality_loader(kind)
    return modality.load(value, root)


def modality_loader(kind: str) -> Any:
    """The registered modality ``kind`` with its default parameters, for reading raw values."""
    from polymodal import get_plugins
    from polymodal.errors import PolymodalError

    try:
        return get_plugins().build("modalities", kind)
    except PolymodalError as exc:
        raise DataError(f"no loader for modality kind {kind!r}: {exc}") from None


def screen(items: Sequence[T], load: Callable[[T], Any], sample_id: Callable[[T], Any]) -> tuple[list[T], list[tuple[Any, str]]]:
    """``on_error = "skip"``: the items that load, and ``(id, reason)`` of each that raises :class:`DataError`."""
    keep: list[T] = []
    failed: list[tuple[Any, str]] = []
    for item in items:
        try:
            load(item)
        except DataError as exc:
            failed.append((sample_id(item), str(exc)))
        else:
            keep.append(item)
    return keep, failed


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
        # A reader sets ``self.split``: the split it holds, or None when it returned every sample because the
        # data has no splits (then the runner warns that evaluation data is training data). Unset: unknown.
        self._loaders: dict[str, Any] = {}

    def _loader(self, kind: str) -> Any:
        if kind not in self._loaders:
            self._loaders[kind] = modality_loader(kind)
        return self._loaders[kind]

    def _finalise(self) -> None:
        """Call at the end of a reader's constructor, once ``records`` is filled."""
        if self.on_error != "skip":
            return
        self.records, failed = screen(self.records, self._load, lambda rec: rec.id)
        self.skipped_samples.extend(failed)
        self.skipped = len(self.skipped_samples)

    def _load(self, rec: Record) -> dict[str, Any]:
        item: dict[str, Any] = {"id": rec.id}
        for field, kind in self.fields.items():
            value = rec.values.get(field)
            if value is None:
                item[field] = None  # missing modality: an all-false mask row after collation
                continue
            try:
                item[field] = load_field(kind, value, self.root, self._loader(kind))
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
        kind = self.fields.get(field)
        if kind is None or not traits_of(self._loader(kind)).textual:
            raise DataError(f"dataset {self.name!r} has no text field {field!r} (a field whose modality is textual)")
        out = []
        records = self.records if indices is None else [self.records[i] for i in indices]
        for r in records:
            value = r.values.get(field)
            if value is not None:
                try:
                    out.append(load_field(kind, value, self.root, self._loader(kind)))
                except DataError:
                    continue  # reported when the sample itself is loaded
        return out

    def target_values(self, name: str) -> list[Any]:
        """Every sample's value of target ``name``, without loading any file (for stratified splits)."""
        return [r.targets.get(name) for r in self.records]

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "root": str(self.root), "samples": len(self), "fields": self.fields,
                "targets": self.targets, "skipped": self.skipped}
