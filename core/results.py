"""The results schema and the append-only, crash-safe result store.

One measurement is one :class:`ResultRow`. The store is a JSONL file: each
row is written as a single ``write`` of one complete line, flushed and
fsynced before the call returns, so a process killed at any moment leaves
only whole rows behind. Reading skips (and counts) a torn final line, which
can only be one that was never acknowledged.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from polymodal.errors import PolymodalError
from polymodal.faults import write_point

SCHEMA_VERSION = 1


class StorageError(PolymodalError):
    """A write to the results folder failed (disk full, read-only, I/O error): the whole run stops.

    Not a failure of one run of the suite: every later write would fail too,
    and an error row could not be stored either.
    """


def _clean(value: Any) -> Any:
    """JSON-safe value: tensors and numpy scalars to Python, NaN/inf to strings."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@attrs.frozen
class ResultRow:
    """One measurement: which axis and metric, its value, and the conditions."""

    axis: str
    metric: str
    value: float | None
    run: str = ""
    conditions: dict[str, Any] = attrs.field(factory=dict)
    extra: dict[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "run": self.run,
            "axis": self.axis,
            "metric": self.metric,
            "value": _clean(self.value),
            "conditions": _clean(self.conditions),
            "extra": _clean(self.extra),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ResultRow:
        value = obj.get("value")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            try:
                value = float(value)
            except (ValueError, OverflowError):
                raise PolymodalError(f"result row {obj.get('axis')}/{obj.get('metric')}: value {str(value)[:40]!r} "
                                     "is not a number in the range of a float") from None
        return cls(axis=obj["axis"], metric=obj["metric"], value=value, run=obj.get("run", ""),
                   conditions=obj.get("conditions", {}), extra=obj.get("extra", {}))


#: Integers in a results file longer than this are refused (Python refuses > 4300 digits with a ValueError).
MAX_INT_DIGITS = 400


#: Failures of the results folder itself, which stop the whole suite (no error row could be stored).
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def is_storage_failure(exc: BaseException) -> bool:
    """A failure of the output folder itself (not of one run): every later write would fail too."""
    return isinstance(exc, StorageError) or (isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS)


def storage_error(out: Path, exc: OSError) -> StorageError:
    """One line for a failed write, saying that what was committed is kept and how to go on."""
    advice = "everything committed is kept: fix this and rerun with --resume"
    if isinstance(exc, StorageError):
        return StorageError(f"{exc}; {advice}")
    return StorageError(f"--out {out}: cannot write{f' ({exc.filename})' if exc.filename else ''}: "
                        f"{exc.strerror or exc}; {advice}")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS} are read)")
    return int(text)


def loads_record(raw: bytes | str) -> Any:
    """One JSON line of a results, artifacts or progress file, refusing huge integers with a ValueError."""
    return json.loads(raw, parse_int=_parse_int)


def dumps_record(record: dict[str, Any]) -> bytes:
    """One JSON line; a lone surrogate in a string is written as its ``\\udXXX`` escape, which reads back the same."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    return text.encode("utf-8", errors="backslashreplace")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: a temporary file, fsynced, then renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    write_point(f"write {path.name}")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        write_point(f"fsync {path.name}")
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class JsonlStore:
    """Append-only JSON-lines file with whole-line, durable appends."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.torn_lines = 0

    def append(self, record: dict[str, Any]) -> int:
        """Append one record; returns the file's size after it."""
        return self.append_many([record])

    def append_many(self, records: list[dict[str, Any]]) -> int:
        """Append ``records`` with one write and one fsync; returns the file's size after them.

        On a failed or short write the file is cut back to its old size, so it
        holds whole lines only (e.g. ENOSPC mid-line).
        """
        data = b"".join(dumps_record(r) for r in records)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot write results to {self.path}: {exc.strerror}") from None
        start = os.fstat(fd).st_size
        try:
            if data:
                write_point(f"write {self.path.name}")
                written = os.write(fd, data)
                if written != len(data):
                    raise StorageError(f"short write to {self.path} ({written} of {len(data)} bytes): disk full?")
                write_point(f"fsync {self.path.name}")
                os.fsync(fd)
        except (OSError, PolymodalError) as exc:
            # Cut a partial line off again so the file stays whole rows only (e.g. ENOSPC mid-line).
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            if isinstance(exc, PolymodalError):
                raise
            raise StorageError(f"cannot write results to {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return start + len(data)

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        for r in records:
            self.append(r)

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate_to(self, size: int) -> int:
        """Cut the file back to ``size`` bytes (an uncommitted tail); returns the bytes removed."""
        have = self.size()
        if have <= size:
            return 0
        with self.path.open("r+b") as fh:
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())
        return have - size

    def read(self) -> Iterator[dict[str, Any]]:
        """Every complete record; a torn last line (from a crash) is skipped and counted."""
        self.torn_lines = 0
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    self.torn_lines += 1
                    continue
                try:
                    yield loads_record(raw)
                except (ValueError, RecursionError):  # bad JSON, a hostile integer or nesting: not a row we wrote
                    self.torn_lines += 1

    def repair(self) -> int:
        """Truncate a torn final line so later appends start on a clean line."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with self.path.open("r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        return len(data) - keep
