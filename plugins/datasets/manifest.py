"""A JSONL or CSV manifest: one row per sample, one column per modality, plus labels.

``fields`` maps columns to modality kinds (``{"photo": "image", "caption":
"text"}``); by default columns named after a kind (``image``, ``text``,
``caption``, ``audio``, ``video``, or starting with one, like ``text_zh``)
are modality columns. ``targets`` defaults to every other column except
``id`` and ``split``. Each target column is typed once over the whole
file: integer labels are class indices (the class count is the largest
index + 1), string labels are class names (sorted, or in the order given
in ``class_names``), and a column mixing the two is an error naming the
lines. In JSONL ``"1"`` is a name and ``1`` an index; CSV cells have no
type, so an all-integer CSV column is integer. Image/audio/video cells are
paths relative to the root; text cells are inline captions. An empty cell
is a missing modality. A ``split`` column, when present, selects rows with
``split=``; without one every split is every row (``split`` is then None,
and the runner warns that evaluation data equals training data).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from polymodal.errors import DataError
from polymodal.data import resolve_inside
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
        all_rows = list(rows.items())
        # Types and classes come from every row, so all splits agree on them.
        self.class_names = {}
        self.num_classes = {}
        converted = {t: self._convert_target(file, t, all_rows, (class_names or {}).get(t), csv=file.suffix.lower() == ".csv")
                     for t in self.targets}
        keep = [k for k, (_, r) in enumerate(all_rows) if split is None or "split" not in columns or r.get("split") == split]
        self.split = split if split is not None and "split" in columns else None
        if not keep:
            have = sorted({str(r.get("split")) for _, r in all_rows if r.get("split") not in (None, "")})
            raise DataError(f"dataset {self.name!r}: {file}: no rows" + (
                f" with split={split!r} (splits present: {', '.join(have) or 'none'})" if split else ""))
        for k in keep:
            line, row = all_rows[k]
            rid = row.get("id", f"{os.path.basename(file)}:{line}")
            missing = [t for t in self.targets if row.get(t) in (None, "")]
            if missing:
                raise DataError(f"dataset {self.name!r}: {file}, sample {rid!r} (line {line}): missing target(s) "
                                f"{', '.join(missing)}")
            values = {f: (row.get(f) if row.get(f) not in ("",) else None) for f in self.fields}
            self.records.append(Record(id=rid, values=values, targets={t: converted[t][k] for t in self.targets},
                                       where=f"{file.name} line {line}"))
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

    def _convert_target(self, file: Any, name: str, rows: list[tuple[int, dict[str, Any]]],
                        names: Sequence[str] | None, csv: bool) -> list[Any]:
        """One target column, typed once for the whole file.

        JSON values keep their JSON type (``"1"`` is a class *name*, ``1`` a
        class *index*); CSV cells have no type, so a column whose every cell
        is an integer is integer. A column mixing kinds is an error naming
        the lines, because any guess would train on silently wrong labels.
        """
        kinds: dict[str, list[int]] = {}
        for line, row in rows:
            kind = _value_kind(row.get(name), csv)
            if kind is not None:
                kinds.setdefault(kind, []).append(line)
        if set(kinds) == {"integer", "number"}:
            kinds = {"number": sorted(kinds["integer"] + kinds["number"])}
        if len(kinds) > 1:
            detail = "; ".join(f"{kind} at line(s) {_lines(lines)}" for kind, lines in sorted(kinds.items()))
            raise DataError(f"dataset {self.name!r}: {file}: target {name!r} mixes value types ({detail}); "
                            f"use one type per column: class names as strings, or integer class indices")
        kind = next(iter(kinds), None)
        values = [row.get(name) for _, row in rows]
        if kind == "integer":
            ints = [int(v) if v not in (None, "") else None for v in values]
            if any(v is not None and v < 0 for v in ints):
                if names is not None:
                    raise DataError(f"dataset {self.name!r}: {file}: target {name!r} has negative class indices "
                                    f"but class_names was given")
                return ints  # negative integers are numbers (e.g. an offset), not class indices: no class count
            count = max((v for v in ints if v is not None), default=-1) + 1
            if names is not None:
                if count > len(names):
                    raise DataError(f"dataset {self.name!r}: {file}: target {name!r} has class index {count - 1} "
                                    f"but class_names lists {len(names)} names")
                self.class_names[name] = [str(n) for n in names]
            self.num_classes[name] = len(names) if names is not None else count
            return ints
        if kind == "number":
            return [float(v) if v not in (None, "") else None for v in values]
        if kind == "string":
            present = [str(v) for v in values if v not in (None, "")]
            classes = [str(n) for n in names] if names is not None else sorted(set(present))
            index = {c: i for i, c in enumerate(classes)}
            unknown = sorted(set(present) - set(index))
            if unknown:
                raise DataError(f"dataset {self.name!r}: {file}: target {name!r} has values {unknown} not in class_names")
            self.class_names[name] = classes
            self.num_classes[name] = len(classes)
            return [index[str(v)] if v not in (None, "") else None for v in values]
        return values  # lists etc. (e.g. reference captions) pass through


def _value_kind(value: Any, csv: bool) -> str | None:
    """``integer``, ``number``, ``string`` or ``other`` (lists ...); None for an empty cell."""
    if value is None or value == "":
        return None
    if isinstance(value, bool | int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        if csv:
            text = value.strip()
            if text.lstrip("-").isascii() and text.lstrip("-").isdigit():
                return "integer"
            try:
                float(text)
            except ValueError:
                return "string"
            return "number"
        return "string"
    return "other"


def _lines(lines: list[int], most: int = 10) -> str:
    shown = ", ".join(str(n) for n in lines[:most])
    return shown + (f" and {len(lines) - most} more" if len(lines) > most else "")
