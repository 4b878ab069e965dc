"""A JSONL or CSV manifest: one row per sample, one column per modality, plus labels.

``fields`` maps columns to modality kinds (``{"photo": "image", "caption":
"text"}``); by default columns named after a kind (``image``, ``text``,
``caption``, ``audio``, ``video``, or starting with one, like ``text_zh``)
are modality columns. ``targets`` defaults to every other column except
``id`` and ``split``. Integer labels stay integers; string labels become
class indices (sorted names, or the order given in ``class_names`` so
several splits agree). Image/audio/video cells are paths relative to the
root; text cells are inline captions. An empty cell is a missing modality.
A ``split`` column, when present, selects rows with ``split=``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from polymodal.errors import DataError
from polymodal.paths import resolve_inside
from polymodal_plugins.datasets.files import FileDataset, Record

_ALIASES = {"caption": "text"}


def _kinds() -> list[str]:
    """Every registered modality (a third-party one included), from the registry."""
    from polymodal import get_plugins

    return get_plugins().registry("modalities").names()


def _infer_kind(column: str, kinds: list[str]) -> str | None:
    low = column.lower()
    for word, kind in [*((k, k) for k in kinds), *((a, k) for a, k in _ALIASES.items() if k in kinds)]:
        if low == word or low.startswith(word + "_") or low.startswith(word + "s"):
            return kind
    return None


class Manifest(FileDataset):
    """Rows of a ``.jsonl`` or ``.csv`` manifest (``path`` is relative to ``root``)."""

    name = "manifest"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = None,
        path: str = "manifest.jsonl",
        fields: Mapping[str, str] | None = None,
        targets: Sequence[str] | None = None,
        class_names: Mapping[str, Sequence[str]] | None = None,
        on_error: str = "raise",
    ) -> None:
        super().__init__(root, on_error)
        file = resolve_inside(self.root, path, what=f"dataset {self.name!r}")
        rows = self._read(file)
        columns = list(dict.fromkeys(c for row in rows.values() for c in row))
        kinds = _kinds()
        if fields is None:
            fields = {c: k for c in columns if (k := _infer_kind(c, kinds)) is not None}
        bad = {c: k for c, k in fields.items() if k not in kinds}
        if bad:
            raise DataError(f"dataset {self.name!r}: {file}: unknown modality kinds {bad}; kinds are {', '.join(kinds)}")
        if not fields:
            raise DataError(f"dataset {self.name!r}: {file}: no modality columns (columns: {', '.join(columns)}); "
                            f"name them after a modality ({', '.join(kinds)}) or pass fields=")
        self.fields = dict(fields)
        self.targets = list(targets) if targets is not None else [
            c for c in columns if c not in self.fields and c not in ("id", "split")
        ]
        if split is not None and "split" in columns:
            rows = [(n, r) for n, r in rows.items() if r.get("split") == split]
        else:
            rows = list(rows.items())
        if not rows:
            raise DataError(f"dataset {self.name!r}: {file}: no rows" + (f" with split={split!r}" if split else ""))
        self.class_names = {}
        converted = {t: self._convert_target(file, t, [r.get(t) for _, r in rows], (class_names or {}).get(t))
                     for t in self.targets}
        for k, (line, row) in enumerate(rows):
            rid = row.get("id", f"{os.path.basename(file)}:{line}")
            missing = [t for t in self.targets if row.get(t) in (None, "")]
            if missing:
                raise DataError(f"dataset {self.name!r}: {file}, sample {rid!r} (line {line}): missing target(s) "
                                f"{', '.join(missing)}")
            values = {f: (row.get(f) if row.get(f) not in ("",) else None) for f in self.fields}
            self.records.append(Record(id=rid, values=values, targets={t: converted[t][k] for t in self.targets}))
        self._finalise()

    def _read(self, file: Any) -> dict[int, dict[str, Any]]:
        """Rows keyed by line number (for error messages)."""
        if not file.is_file():
            raise DataError(f"dataset {self.name!r}: manifest {str(file)!r} not found")
        rows: dict[int, dict[str, Any]] = {}
        try:
            with open(file, encoding="utf-8", newline="") as fh:
                if file.suffix.lower() == ".csv":
                    reader = csv.DictReader(fh)
                    if not reader.fieldnames:
                        raise DataError(f"dataset {self.name!r}: {file}: CSV has no header row")
                    for row in reader:
                        if None in row:
                            raise DataError(f"dataset {self.name!r}: {file}, line {reader.line_num}: more cells than header columns")
                        rows[reader.line_num] = {k: v for k, v in row.items()}
                else:
                    for n, line in enumerate(fh, start=1):
                        if not line.strip():
                            continue
                        try:
                            row = json.loads(line)
                        except json.JSONDecodeError as exc:
                            raise DataError(f"dataset {self.name!r}: {file}, line {n}: invalid JSON: {exc}") from None
                        except RecursionError:
                            raise DataError(f"dataset {self.name!r}: {file}, line {n}: invalid JSON: nested too deeply") from None
                        if not isinstance(row, dict):
                            raise DataError(f"dataset {self.name!r}: {file}, line {n}: expected a JSON object per line")
                        rows[n] = row
        except UnicodeDecodeError as exc:
            raise DataError(f"dataset {self.name!r}: {file}: not UTF-8 text: {exc}") from None
        except csv.Error as exc:
            raise DataError(f"dataset {self.name!r}: {file}: malformed CSV: {exc}") from None
        return rows

    def _convert_target(self, file: Any, name: str, values: list[Any], names: Sequence[str] | None) -> list[Any]:
        present = [v for v in values if v not in (None, "")]
        if names is not None:
            index = {str(n): i for i, n in enumerate(names)}
            unknown = sorted({str(v) for v in present} - set(index))
            if unknown:
                raise DataError(f"dataset {self.name!r}: {file}: target {name!r} has values {unknown} not in class_names")
            self.class_names[name] = [str(n) for n in names]
            return [index.get(str(v)) for v in values]
        if all(isinstance(v, bool | int) or (isinstance(v, str) and v.strip().lstrip("-").isdigit()) for v in present):
            try:  # str.isdigit() accepts digits int() refuses, such as superscripts
                return [int(v) if v not in (None, "") else None for v in values]
            except ValueError:
                pass
        try:
            return [float(v) if v not in (None, "") else None for v in values]
        except (TypeError, ValueError):
            pass
        if all(isinstance(v, str) for v in present):
            classes = sorted(set(present))
            self.class_names[name] = classes
            index = {c: i for i, c in enumerate(classes)}
            return [index.get(v) for v in values]
        return values  # lists etc. (e.g. reference captions) pass through
