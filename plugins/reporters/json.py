"""The ``json`` reporter: the whole results folder as one versioned document.

Schema ``polymodal-report`` version 1 (documented in ``docs/reports.md``)::

    {"schema": "polymodal-report", "schema_version": 1,
     "generated_by": "polymodal X.Y.Z", "generated_at": ISO-8601 UTC,
     "source": {"results_dir", "rows", "artifacts", "problems": [str]},
     "manifest": {...} | null,
     "runs": [{"id", "model", "fusion", "dataset", "seed", "status", "error"}],
     "leaderboard": {"columns": [{"key", "axis", "metric", "higher_is_better", "averaged_over"}],
                     "rows": [{"run", "values": {key: number|null}, "counts": {key: int}, "best": [key]}]},
     "results": [ResultRow.to_json() ...],
     "artifacts": [{"run", "axis", "kind", "path", "data"} ...]}

Readers must check ``schema_version``; fields are only ever added within a
version. Non-finite numbers are written as the strings ``"nan"``/``"inf"`` so
the file is strict JSON.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import attrs

from polymodal import __version__
from polymodal.leaderboard import ablations, build_leaderboard
from polymodal.report import Progress, ResultsFolder, load_results

REPORT_SCHEMA = "polymodal-report"
REPORT_SCHEMA_VERSION = 1


def report_document(folder: ResultsFolder) -> dict[str, Any]:
    """The JSON report as a Python object (also used by ``polymodal compare --json``)."""
    board = build_leaderboard(folder.rows, [r.id for r in folder.runs])
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_by": f"polymodal {__version__}",
        "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": {"results_dir": str(folder.root), "rows": len(folder.rows), "artifacts": len(folder.artifacts),
                   "problems": list(folder.problems)},
        "manifest": folder.manifest,
        "runs": [r.to_json() for r in folder.runs],
        "leaderboard": board.to_json(),
        "ablations": [a.to_json() for a in ablations(board)],
        "results": [r.to_json() for r in folder.rows],
        "artifacts": [attrs.asdict(a) for a in folder.artifacts],
    }


class JsonReporter:
    """Writes :func:`report_document` as indented, strict JSON."""

    extension = ".json"

    def __call__(self, results_dir: str | Path, out_path: str | Path, progress: Progress | None = None) -> Path:
        folder = load_results(results_dir)
        doc = report_document(folder)
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
        return out
