"""Hugging Face ``datasets`` as a reader: a hub id, or local parquet / arrow / imagefolder / audiofolder data.

``path`` is what :func:`datasets.load_dataset` takes: a hub id
(``"ylecun/mnist"``) or a builder name (``"parquet"``, ``"arrow"``,
``"imagefolder"``, ``"audiofolder"``, ``"csv"``, ``"json"``) with
``data_files`` / ``data_dir`` relative to ``root``. Columns become fields
by their *feature type*, which the dataset declares: ``Image`` -> image,
``Audio`` -> audio (decoded here with soundfile, so no extra decoder is
needed), a string column named ``text``/``caption``/``sentence`` (or
starting with one) -> text. ``fields`` overrides that mapping. Targets
default to the remaining ``ClassLabel`` and numeric columns (and string
columns, as class names): ``ClassLabel`` names become ``class_names``,
integer columns give the class count from the data.

Our split names map onto the dataset's (``val`` -> ``validation`` when
there is no ``val``); data with one split serves every split and says so
(``split`` None), like a manifest without a ``split`` column.

``streaming = true`` (:class:`HFStream`) reads rows as a stream, for data
that does not fit on disk: nothing is written to the cache and nothing is
held beyond the batch being built. A counting pass over one small column
gives the length (and the class count of integer labels); samples are then
read front to back (see :mod:`polymodal.streaming`), with images and audio
decoded only for the rows a rank or DataLoader worker needs. Ids, order and
hence figures equal the non-streaming reader's. ``max_samples`` optionally
keeps the first rows only. Nothing runs remote code: ``datasets`` 3+ has no
loading scripts.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal_plugins.datasets.files import screen

_TEXT_NAMES = ("text", "caption", "sentence")
_SPLIT_ALIASES = {"val": ("validation", "valid", "dev"), "test": ("testing",), "train": ("training",)}


class HFDataset:
    """One split of a ``datasets`` dataset, rows decoded on ``__getitem__``."""

    name = "hf-datasets"

    def __new__(cls, *args: Any, streaming: bool = False, **kwargs: Any) -> Any:
        # One dataset name, two readers: ``streaming = true`` picks the streamed one; Python then runs
        # HFStream.__init__ (a subclass) with the same arguments.
        return super().__new__(HFStream if streaming and cls is HFDataset else cls)

    def __init__(
        self,
        path: str,
        root: str | os.PathLike[str] | None = None,
        split: str | None = None,
        data_files: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
        data_dir: str | None = None,
        config_name: str | None = None,
        fields: Mapping[str, str] | None = None,
        targets: Sequence[str] | None = None,
        streaming: bool = False,
        max_samples: int | None = None,
        cache_dir: str | None = None,
        revision: str | None = None,
        on_error: str = "raise",
        shuffle_window: int = 1024,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise DataError(f"dataset {self.name!r}: on_error must be 'raise' or 'skip', got {on_error!r}")
        self.root = Path(root).expanduser().resolve() if root is not None else None
        self.source = path
        self.skipped = 0
        self.skipped_samples: list[tuple[Any, str]] = []
        self.class_names: dict[str, list[str]] = {}
        self.num_classes: dict[str, int] = {}
        table = self._load(path, split, _local(self.root, data_files), _local(self.root, data_dir), config_name,
                           streaming, cache_dir, revision)
        if max_samples is not None:
            table = self._take(table, int(max_samples))
        self._table = table
        self._columns(dict(table.features or {}), fields, targets, path)
        self._rows = list(range(len(table)))
        if on_error == "skip":
            self._rows, failed = screen(self._rows, self._item, self._id)
            self.skipped_samples.extend(failed)
            self.skipped = len(self.skipped_samples)

    def _columns(self, features: dict[str, Any], fields: Mapping[str, str] | None, targets: Sequence[str] | None,
                 path: str) -> None:
        """Fields and targets from the declared features (or the user's mapping), and the targets' classes."""
        self.fields = dict(fields) if fields is not None else _infer_fields(features)
        unknown = [c for c in [*self.fields, *(targets or [])] if c not in features]
        if unknown:
            raise DataError(f"dataset {self.name!r} ({path}): no column(s) {unknown}; columns: {', '.join(features)}")
        bad = {c: k for c, k in self.fields.items() if k not in ("image", "audio", "text", "video")}
        if bad:
            raise DataError(f"dataset {self.name!r} ({path}): unknown modality kinds {bad}")
        if not self.fields:
            raise DataError(f"dataset {self.name!r} ({path}): no image/audio/text column found among "
                            f"{', '.join(features)}; pass fields = {{ column = \"image\" }}")
        self.targets = list(targets) if targets is not None else [
            c for c, f in features.items() if c not in self.fields and c != "id" and _is_target(f)]
        self._label_maps: dict[str, dict[str, int]] = {}
        for t in self.targets:
            self._describe_target(t, features[t])

    # -- loading ------------------------------------------------------------------------
    def _load(self, path: str, split: str | None, data_files: Any, data_dir: Any, config_name: str | None,
              streaming: bool, cache_dir: str | None, revision: str | None) -> Any:
        try:
            import datasets
        except ImportError:
            raise DataError(f"dataset {self.name!r} needs the 'datasets' package: pip install 'polymodal[hf]'") from None
        try:
            every = datasets.load_dataset(path, name=config_name, data_files=data_files, data_dir=data_dir,
                                          cache_dir=cache_dir, revision=revision, streaming=streaming)
        except Exception as exc:  # noqa: BLE001 - hub, offline, format and file errors all arrive here
            raise DataError(f"dataset {self.name!r}: cannot load {path!r}"
                            f"{f' (data_files={data_files})' if data_files else ''}: {type(exc).__name__}: {exc}") from None
        names = list(every)
        self.split = split
        if split is None:
            chosen = "train" if "train" in names else names[0]
            self.split = None
        elif split in names:
            chosen = split
        elif alias := next((a for a in _SPLIT_ALIASES.get(split, ()) if a in names), None):
            chosen = alias
        elif len(names) == 1:
            chosen, self.split = names[0], None  # one split serves all; the runner warns
        else:
            raise DataError(f"dataset {self.name!r} ({path}): no split {split!r}; it has {', '.join(names)}")
        self.hf_split = chosen
        table = every[chosen]
        for column, feature in dict(table.features or {}).items():
            if isinstance(feature, datasets.Audio) and feature.decode:
                # Decoded here with soundfile: datasets' own decoder needs torchcodec, an extra native dependency.
                table = table.cast_column(column, datasets.Audio(decode=False))
        return table

    @staticmethod
    def _take(table: Any, n: int) -> Any:
        """The first ``n`` rows."""
        return table.select(range(min(n, len(table))))

    def _describe_target(self, name: str, feature: Any) -> None:
        import datasets

        if isinstance(feature, datasets.ClassLabel):
            self.class_names[name] = list(feature.names)
            self.num_classes[name] = int(feature.num_classes)
            return
        dtype = getattr(feature, "dtype", "")
        if isinstance(feature, datasets.Value) and dtype.startswith(("int", "uint")):
            column = [v for v in self._column(name) if v is not None]
            if any(v < 0 for v in column):
                raise DataError(f"dataset {self.name!r}: target {name!r} has negative class indices")
            self.num_classes[name] = max(column, default=-1) + 1
        elif isinstance(feature, datasets.Value) and dtype in ("string", "large_string"):
            names = sorted({v for v in self._column(name) if v is not None})
            self.class_names[name] = names
            self.num_classes[name] = len(names)
            self._label_maps[name] = {n: i for i, n in enumerate(names)}

    def _column(self, name: str) -> list[Any]:
        """One column as a list, read from Arrow without decoding the other columns."""
        return list(self._table[name])

    # -- samples ------------------------------------------------------------------------
    def _id(self, row: int) -> Any:
        if "id" in (self._table.features or {}):
            return self._table[row]["id"]
        return f"{self.hf_split}:{row}"

    def _item(self, row: int) -> dict[str, Any]:
        try:
            record = self._table[row]
        except Exception as exc:  # noqa: BLE001 - a corrupt image or file surfaces while decoding the row
            raise DataError(f"dataset {self.name!r} ({self.source}), split {self.hf_split!r}, row {row}: "
                            f"cannot decode: {type(exc).__name__}: {exc}") from None
        item: dict[str, Any] = {"id": record.get("id", f"{self.hf_split}:{row}")}
        for field, kind in self.fields.items():
            try:
                item[field] = _value(kind, record.get(field))
            except DataError as exc:
                raise DataError(f"dataset {self.name!r} ({self.source}), split {self.hf_split!r}, row {row}, "
                                f"field {field!r}: {exc}") from None
        for t in self.targets:
            value = record.get(t)
            if value is None:
                raise DataError(f"dataset {self.name!r} ({self.source}), split {self.hf_split!r}, row {row}: "
                                f"missing target {t!r}")
            item[t] = self._label_maps[t][value] if t in self._label_maps else value
        return item

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._item(self._rows[i])

    def texts(self, field: str, indices: Sequence[int] | None = None) -> list[str]:
        """The column's texts without decoding images or audio (for fitting a vocabulary)."""
        if self.fields.get(field) != "text":
            raise DataError(f"dataset {self.name!r} has no text field {field!r}")
        column = self._column(field)
        rows = self._rows if indices is None else [self._rows[i] for i in indices]
        return [column[r] for r in rows if isinstance(column[r], str) and column[r].strip()]

    def target_values(self, name: str) -> list[Any]:
        column = self._column(name)
        labels = self._label_maps.get(name)
        return [labels[column[r]] if labels else column[r] for r in self._rows]

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "path": self.source, "split": self.hf_split, "samples": len(self),
                "fields": self.fields, "targets": self.targets, "skipped": self.skipped}


class HFStream(HFDataset):
    """A split of a ``datasets`` stream, read front to back (see the module docstring)."""

    #: Rows per Arrow record batch read from the stream.
    READ_ROWS = 256

    def __init__(
        self,
        path: str,
        root: str | os.PathLike[str] | None = None,
        split: str | None = None,
        data_files: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
        data_dir: str | None = None,
        config_name: str | None = None,
        fields: Mapping[str, str] | None = None,
        targets: Sequence[str] | None = None,
        streaming: bool = True,
        max_samples: int | None = None,
        cache_dir: str | None = None,
        revision: str | None = None,
        on_error: str = "raise",
        shuffle_window: int = 1024,
    ) -> None:
        if on_error != "raise":
            raise DataError(f"dataset {self.name!r}: on_error = {on_error!r} needs a pass that decodes every row; "
                            "with streaming = true a bad row stops the run naming it (check first with "
                            "`polymodal data inspect`)")
        self.root = Path(root).expanduser().resolve() if root is not None else None
        self.source = path
        self.shuffle_window = int(shuffle_window)
        self.skipped = 0
        self.skipped_samples: list[tuple[Any, str]] = []
        self.class_names: dict[str, list[str]] = {}
        self.num_classes: dict[str, int] = {}
        table = self._load(path, split, _local(self.root, data_files), _local(self.root, data_dir), config_name,
                           True, cache_dir, revision)
        if max_samples is not None:
            table = table.take(int(max_samples))
        if table.features is None:
            raise DataError(f"dataset {self.name!r} ({path}): the stream does not declare its columns; "
                            "stream a format that does (parquet, arrow) or set streaming = false")
        self._features = dict(table.features)
        self._raw = table.decode(False)  # media bytes stay bytes until a row is wanted
        self._n: int | None = None
        self._columns(self._features, fields, targets, path)
        self._n = self._count()

    def _arrow(self, columns: Sequence[str]) -> Iterator[Any]:
        """The stream's Arrow record batches of ``columns`` (not split over DataLoader workers: BatchStream is)."""
        return self._raw.select_columns(list(columns)).with_format("arrow").iter(batch_size=self.READ_ROWS)

    def _count(self) -> int:
        """The counting pass, over the cheapest column: a target or id, else the first field."""
        column = next((c for c in [*self.targets, "id"] if c in self._features), next(iter(self.fields)))
        return sum(batch.num_rows for batch in self._arrow([column]))

    def _column(self, name: str) -> list[Any]:
        return [v for batch in self._arrow([name]) for v in batch.column(name).to_pylist()]

    def __len__(self) -> int:
        return self._n or 0

    def __getitem__(self, i: int) -> dict[str, Any]:
        raise TypeError(f"dataset {self.name!r} with streaming = true is read in order (iter_indices), not by index")

    def iter_indices(self, indices: Iterable[int]) -> Iterator[dict[str, Any]]:
        """Rows at ascending positions; rows between them are read as bytes, never decoded."""
        it = iter(indices)
        nxt = next(it, None)
        if nxt is None:
            return
        wanted = list(dict.fromkeys([*self.fields, *self.targets, *(["id"] if "id" in self._features else [])]))
        base = 0
        for batch in self._arrow(wanted):
            while nxt is not None and nxt < base + batch.num_rows:
                yield self._decode(batch.slice(nxt - base, 1).to_pylist()[0], nxt)
                nxt = next(it, None)
            if nxt is None:
                return
            base += batch.num_rows
        raise DataError(f"dataset {self.name!r} ({self.source}), split {self.hf_split!r}: the stream ended at row "
                        f"{base}, before row {nxt} (it was counted as {len(self)} rows)")

    def _decode(self, record: dict[str, Any], row: int) -> dict[str, Any]:
        where = f"dataset {self.name!r} ({self.source}), split {self.hf_split!r}, row {row}"
        item: dict[str, Any] = {"id": record.get("id", f"{self.hf_split}:{row}")}
        for field, kind in self.fields.items():
            try:
                item[field] = _value(kind, _decoded(self._features[field], record.get(field)))
            except DataError as exc:
                raise DataError(f"{where}, field {field!r}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - a corrupt image or file surfaces while decoding the cell
                raise DataError(f"{where}, field {field!r}: cannot decode: {type(exc).__name__}: {exc}") from None
        for t in self.targets:
            value = record.get(t)
            if value is None:
                raise DataError(f"{where}: missing target {t!r}")
            item[t] = self._label_maps[t][value] if t in self._label_maps else value
        return item

    def texts(self, field: str, indices: Sequence[int] | None = None) -> list[str]:
        if self.fields.get(field) != "text":
            raise DataError(f"dataset {self.name!r} has no text field {field!r}")
        column = self._column(field)
        chosen = column if indices is None else [column[i] for i in indices]
        return [t for t in chosen if isinstance(t, str) and t.strip()]

    def target_values(self, name: str) -> list[Any]:
        labels = self._label_maps.get(name)
        return [labels[v] if labels else v for v in self._column(name)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "streaming": True}


def _decoded(feature: Any, value: Any) -> Any:
    """A cell read with decoding off, decoded as the feature would (images to PIL; audio stays bytes for soundfile)."""
    import datasets

    if value is not None and isinstance(feature, datasets.Image):
        return datasets.Image().decode_example(value)
    return value


def _local(root: Path | None, value: Any) -> Any:
    """``data_files`` / ``data_dir`` resolved inside ``root`` (hub paths pass through when there is no root)."""
    if root is None or value is None:
        return value
    if isinstance(value, str):
        return str(resolve_inside(root, value, what="dataset 'hf-datasets'"))
    if isinstance(value, Mapping):
        return {k: _local(root, v) for k, v in value.items()}
    return [_local(root, v) for v in value]


def _infer_fields(features: Mapping[str, Any]) -> dict[str, str]:
    import datasets

    out = {}
    for column, feature in features.items():
        if isinstance(feature, datasets.Image):
            out[column] = "image"
        elif isinstance(feature, datasets.Audio):
            out[column] = "audio"
        elif isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string") \
                and column.lower().startswith(_TEXT_NAMES):
            out[column] = "text"
    return out


def _is_target(feature: Any) -> bool:
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return True
    return isinstance(feature, datasets.Value) and (
        feature.dtype.startswith(("int", "uint", "float")) or feature.dtype in ("bool", "string", "large_string"))


def _value(kind: str, value: Any) -> Any:
    """A decoded cell as the modality's ``load`` accepts it (PIL image, AudioClip, str)."""
    if value is None:
        return None
    if kind == "audio":
        return _audio(value)
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise DataError("empty or non-string caption")
        return value
    return value  # images arrive as PIL images, video as frames or arrays


def _audio(value: Any) -> Any:
    import numpy as np

    from polymodal.data import AudioClip

    if isinstance(value, Mapping) and "array" in value:
        samples = np.asarray(value["array"], dtype=np.float32)
        return AudioClip(samples if samples.ndim == 2 else samples[None], int(value["sampling_rate"]))
    if hasattr(value, "get_all_samples"):  # a torchcodec decoder (datasets >= 4 decodes audio with it)
        decoded = value.get_all_samples()
        return AudioClip(np.asarray(decoded.data, dtype=np.float32), int(decoded.sample_rate))
    if isinstance(value, Mapping) and (value.get("bytes") or value.get("path")):
        import soundfile

        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
        try:
            samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - soundfile raises several types for bad files
            raise DataError(f"cannot read audio: {type(exc).__name__}: {exc}") from None
        return AudioClip(samples.T.copy(), int(rate))
    raise DataError(f"audio: expected an Audio feature value, got {type(value).__name__}")
