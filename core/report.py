"""The report pipeline's entry point: read a results folder, hand it to a reporter.

A results folder, as the runner writes it, holds::

    results.jsonl     one ResultRow.to_json() per line (append-only)
    artifacts.jsonl   one {"run", "axis", "kind", "path"?, "data"} per line
    artifacts/        PNG files the artifacts point at
    manifest.json     the resolved suite, runs, versions, seeds, device, times

:func:`load_results` reads all of it into a :class:`ResultsFolder`, checking
every line so that a reporter never renders silently wrong numbers: a
malformed line is a :class:`DataError` naming the file and line, while a torn
*final* line (a crash mid-write, which the store never acknowledged) is
skipped and reported as a problem. :func:`render` looks the reporter up by
name in the plugin registry, so third-party reporters work exactly like the
built-in ``json``, ``markdown`` and ``html`` ones.

Nothing here imports torch or matplotlib: reporters import what they need.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from polymodal.errors import DataError, PolymodalError
from polymodal.results import SCHEMA_VERSION, ResultRow, loads_record

RESULTS_FILE = "results.jsonl"
ARTIFACTS_FILE = "artifacts.jsonl"
MANIFEST_FILE = "manifest.json"

#: The formats ``polymodal run`` writes by default, with their file names.
DEFAULT_FORMATS: tuple[str, ...] = ("json", "markdown", "html")
DEFAULT_FILE_NAMES: dict[str, str] = {"json": "report.json", "markdown": "report.md", "html": "report.html"}

ARTIFACT_KINDS = frozenset({"caption_example", "retrieval_example", "generated_image", "attention_map", "importance"})

#: Image files embedded in a report are capped so that one odd artifact cannot
#: turn a report into a hundred-megabyte page.
MAX_EMBEDDED_IMAGE_BYTES = 4 * 1024 * 1024

Progress = Callable[[str], None]


@attrs.frozen
class Artifact:
    """One qualitative example the runner saved (caption, retrieval, heatmap...)."""

    run: str
    axis: str
    kind: str
    path: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class RunInfo:
    """One run of the suite, from the manifest (or inferred from result rows)."""

    id: str
    model: str | None = None
    fusion: str | None = None
    dataset: str | None = None
    seed: int | None = None
    status: str = "unknown"
    #: The traceback (or message) of a failed run, from its ``error`` row.
    error: str | None = None

    @property
    def label(self) -> str:
        return self.id

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class ResultsFolder:
    """Everything a reporter needs, read and validated from one results folder."""

    root: Path
    rows: tuple[ResultRow, ...]
    artifacts: tuple[Artifact, ...]
    manifest: dict[str, Any] | None
    runs: tuple[RunInfo, ...]
    #: Things worth telling the reader that did not stop the report (torn lines, missing files).
    problems: tuple[str, ...] = ()

    @property
    def metric_rows(self) -> list[ResultRow]:
        """Measurements (rows that are not error records)."""
        return [r for r in self.rows if r.metric != "error"]

    def rows_of(self, axis_prefix: str) -> list[ResultRow]:
        """Measurement rows whose axis is ``axis_prefix`` or a sub-axis of it."""
        return [r for r in self.metric_rows if r.axis == axis_prefix or r.axis.startswith(axis_prefix + ".")]

    def artifacts_of(self, kind: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.kind == kind]

    def run(self, run_id: str) -> RunInfo | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def resolve(self, relative: str) -> Path:
        """An artifact path inside the folder; a path escaping it is refused."""
        root = self.root.resolve()
        candidate = (root / relative).resolve()
        if Path(relative).is_absolute() or not candidate.is_relative_to(root):
            raise DataError(f"{self.root / ARTIFACTS_FILE}: artifact path {relative!r} leaves the results folder")
        return candidate

    def read_image(self, relative: str) -> tuple[bytes, str]:
        """Bytes and MIME type of an artifact image (PNG or JPEG only, size-capped)."""
        path = self.resolve(relative)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise DataError(f"artifact image {relative!r} in {self.root}: {exc.strerror}") from None
        if size > MAX_EMBEDDED_IMAGE_BYTES:
            raise DataError(f"artifact image {relative!r} in {self.root} is {size} bytes; "
                            f"the limit for embedding is {MAX_EMBEDDED_IMAGE_BYTES}")
        data = path.read_bytes()
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return data, "image/png"
        if data.startswith(b"\xff\xd8\xff"):
            return data, "image/jpeg"
        raise DataError(f"artifact image {relative!r} in {self.root} is neither PNG nor JPEG")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"value must be a number, got {type(value).__name__}")
    if isinstance(value, str) and value not in ("nan", "inf", "-inf"):
        raise ValueError(f"value must be a number, got the string {value[:40]!r}")
    try:
        out = float(value)  # the store writes NaN/inf as strings
    except OverflowError:
        raise ValueError(f"value has {len(str(value))} digits: out of the range of a float") from None
    if isinstance(value, int) and math.isinf(out):
        raise ValueError("value is out of the range of a float")
    return out


def _read_jsonl(path: Path, problems: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) pairs; a torn last line is a problem, any other bad line an error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    lines = raw.split(b"\n")
    out: list[tuple[int, dict[str, Any]]] = []
    last = len(lines) - 1  # the element after the final newline ('' when the file is whole)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = loads_record(line)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            if i == last:
                problems.append(f"{path.name}: skipped a torn final line (line {i + 1}), left by an interrupted write")
                continue
            raise DataError(f"{path}: line {i + 1} is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {i + 1} must be a JSON object, got {type(obj).__name__}")
        out.append((i + 1, obj))
    return out


def _parse_row(path: Path, lineno: int, obj: dict[str, Any]) -> ResultRow:
    where = f"{path}: line {lineno}"
    schema = obj.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise DataError(f"{where}: results schema {schema!r} is not supported (this polymodal reads {SCHEMA_VERSION})")
    for key in ("axis", "metric"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise DataError(f"{where}: key {key!r} must be a non-empty string")
    if not isinstance(obj.get("run", ""), str):
        raise DataError(f"{where}: key 'run' must be a string")
    for key in ("conditions", "extra"):
        if not isinstance(obj.get(key, {}), dict):
            raise DataError(f"{where}: key {key!r} must be an object")
    try:
        value = _finite(obj.get("value"))
    except ValueError as exc:
        raise DataError(f"{where}: key 'value': {exc}") from None
    return ResultRow(axis=obj["axis"], metric=obj["metric"], value=value, run=obj.get("run", ""),
                     conditions=dict(obj.get("conditions", {})), extra=dict(obj.get("extra", {})))


def _parse_artifact(path: Path, lineno: int, obj: dict[str, Any], problems: list[str]) -> Artifact | None:
    where = f"{path}: line {lineno}"
    for key in ("run", "axis", "kind"):
        if not isinstance(obj.get(key), str):
            raise DataError(f"{where}: key {key!r} must be a string")
    if obj.get("path") is not None and not isinstance(obj["path"], str):
        raise DataError(f"{where}: key 'path' must be a string")
    if not isinstance(obj.get("data", {}), dict):
        raise DataError(f"{where}: key 'data' must be an object")
    if obj["kind"] not in ARTIFACT_KINDS:
        problems.append(f"{path.name}: line {lineno}: artifact kind {obj['kind']!r} is not one this "
                        f"polymodal shows ({', '.join(sorted(ARTIFACT_KINDS))}); kept in the JSON report only")
    return Artifact(run=obj["run"], axis=obj["axis"], kind=obj["kind"], path=obj.get("path"),
                    data=dict(obj.get("data", {})))


def _runs(manifest: dict[str, Any] | None, rows: Sequence[ResultRow], manifest_path: Path) -> tuple[RunInfo, ...]:
    errors: dict[str, str] = {}
    for r in rows:
        if r.metric == "error":
            errors[r.run] = str(r.extra.get("traceback") or r.extra.get("message") or "failed")
    listed: list[RunInfo] = []
    seen: set[str] = set()
    for i, entry in enumerate((manifest or {}).get("runs", []) or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise DataError(f"{manifest_path}: runs[{i}] must be an object with a string 'id'")
        rid = entry["id"]
        status = entry.get("status") or ("failed" if rid in errors else "unknown")
        if rid in errors:
            status = "failed"
        seed = entry.get("seed")
        listed.append(RunInfo(id=rid, model=entry.get("model"), fusion=entry.get("fusion"),
                              dataset=entry.get("dataset"), seed=seed if isinstance(seed, int) else None,
                              status=str(status), error=errors.get(rid)))
        seen.add(rid)
    # Runs that wrote rows but are missing from the manifest (an older or partial manifest).
    for r in rows:
        if r.run not in seen:
            seen.add(r.run)
            c = r.conditions
            listed.append(RunInfo(id=r.run, model=c.get("model"), fusion=c.get("fusion"), dataset=c.get("dataset"),
                                  seed=c.get("seed") if isinstance(c.get("seed"), int) else None,
                                  status="failed" if r.run in errors else "complete", error=errors.get(r.run)))
    return tuple(listed)


def load_results(results_dir: str | Path) -> ResultsFolder:
    """Read and validate a results folder (see the module docstring for the layout)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise DataError(f"results folder {root} does not exist or is not a folder")
    results_path = root / RESULTS_FILE
    if not results_path.is_file():
        raise DataError(f"{root} has no {RESULTS_FILE}: is it a polymodal results folder?")
    problems: list[str] = []
    rows = tuple(_parse_row(results_path, n, obj) for n, obj in _read_jsonl(results_path, problems))

    artifacts: list[Artifact] = []
    artifacts_path = root / ARTIFACTS_FILE
    if artifacts_path.is_file():
        for n, obj in _read_jsonl(artifacts_path, problems):
            art = _parse_artifact(artifacts_path, n, obj, problems)
            if art is not None:
                artifacts.append(art)

    manifest: dict[str, Any] | None = None
    manifest_path = root / MANIFEST_FILE
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise DataError(f"{manifest_path}: not valid JSON: {exc}") from None
        if not isinstance(manifest, dict):
            raise DataError(f"{manifest_path}: must be a JSON object")
        if manifest.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise DataError(f"{manifest_path}: manifest schema {manifest.get('schema')!r} is not supported")
    else:
        problems.append(f"{MANIFEST_FILE} is missing: versions, seeds and the suite are unknown")
    for entry in (manifest or {}).get("runs", []) or []:
        if isinstance(entry, dict):
            # Data warnings (evaluation on training data, skipped samples) belong next to the figures.
            problems += [f"run {entry.get('id')}: {n}" for n in entry.get("data_notes", []) or [] if isinstance(n, str)]
    if not rows:
        problems.append(f"{RESULTS_FILE} holds no results yet")
    bad = [r for r in rows if r.value is not None and not math.isfinite(r.value)]
    if bad:
        problems.append(f"{len(bad)} result(s) are NaN or infinite (e.g. run {bad[0].run!r}, "
                        f"{bad[0].axis}/{bad[0].metric}); shown as such, never as numbers")
    return ResultsFolder(root=root, rows=rows, artifacts=tuple(artifacts), manifest=manifest,
                         runs=_runs(manifest, rows, manifest_path), problems=tuple(problems))


def _stderr_progress(message: str) -> None:
    print(f"polymodal report: {message}", file=sys.stderr, flush=True)


def render(results_dir: str | Path, format: str = "html", out: str | Path | None = None, *,
           plugins: Any = None, progress: Progress | None = _stderr_progress) -> Path:
    """Render ``results_dir`` with the reporter plugin called ``format``; return the file written.

    ``out`` defaults to ``report.<ext>`` inside the results folder. The
    reporter is looked up in ``plugins`` (default: the process-wide manager),
    so an unknown format gets the registry's did-you-mean error.
    """
    if plugins is None:
        from polymodal.plugins import get_plugins

        plugins = get_plugins()
    spec = plugins.get("reporters", format)
    reporter = spec.build()
    root = Path(results_dir)
    target = Path(out) if out is not None else root / DEFAULT_FILE_NAMES.get(format, f"report.{format}")
    if progress:
        progress(f"rendering {format} report of {root}")
    try:
        written = reporter(root, target, progress=progress) if _accepts_progress(reporter) else reporter(root, target)
    except PolymodalError:
        raise
    except OSError as exc:
        raise PolymodalError(f"cannot write the {format} report to {target}: {exc.strerror or exc}") from None
    written = Path(written) if written is not None else target
    if progress:
        progress(f"wrote {written}")
    return written


def write_reports(results_dir: str | Path, formats: Iterable[str] = DEFAULT_FORMATS, *,
                  plugins: Any = None, progress: Progress | None = _stderr_progress) -> list[Path]:
    """Write every format's default report into the results folder (what ``polymodal run`` does)."""
    return [render(results_dir, f, None, plugins=plugins, progress=progress) for f in formats]


def _accepts_progress(reporter: Any) -> bool:
    """Reporters may take a ``progress`` keyword; the hook contract only requires two arguments."""
    import inspect

    try:
        params = inspect.signature(reporter).parameters
    except (TypeError, ValueError):
        return False
    return "progress" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
