"""``polymodal compare A B``: two results folders side by side, with deltas.

Runs are matched by id and cells by leaderboard column, using the same
aggregation as the reports (:mod:`polymodal.leaderboard`), so a delta here is
exactly the difference of the two reports' numbers. A delta is marked better
or worse according to the metric's direction; runs or columns present on one
side only are listed, never silently dropped.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from polymodal import component


def compare_folders(a: Any, b: Any) -> dict[str, Any]:
    """The comparison of two loaded :class:`~polymodal.report.ResultsFolder` objects as a JSON-able dict."""
    import math

    from polymodal.leaderboard import build_leaderboard

    board_a = build_leaderboard(a.rows, [r.id for r in a.runs])
    board_b = build_leaderboard(b.rows, [r.id for r in b.runs])
    cols_a = {c.key: c for c in board_a.columns}
    cols_b = {c.key: c for c in board_b.columns}
    keys = [c.key for c in board_a.columns] + [k for k in cols_b if k not in cols_a]
    runs = list(dict.fromkeys([*board_a.runs, *board_b.runs]))
    rows = []
    for run in runs:
        for key in keys:
            va, vb = board_a.value(run, key), board_b.value(run, key)
            if va is None and vb is None:
                continue
            col = cols_a.get(key) or cols_b[key]
            delta = vb - va if va is not None and vb is not None else None
            if delta is None or not math.isfinite(delta):
                verdict = "only in A" if vb is None else "only in B" if va is None else "n/a"
            elif abs(delta) <= 1e-9 * max(1.0, abs(va)):
                verdict = "same"
            else:
                verdict = "better" if (delta > 0) == col.higher_is_better else "worse"
            rows.append({"run": run, "column": key, "higher_is_better": col.higher_is_better,
                         "a": va, "b": vb, "delta": delta, "verdict": verdict})
    return {
        "a": str(a.root), "b": str(b.root),
        "runs_only_in_a": [r for r in board_a.runs if r not in board_b.runs],
        "runs_only_in_b": [r for r in board_b.runs if r not in board_a.runs],
        "rows": rows,
        "summary": {v: sum(r["verdict"] == v for r in rows)
                    for v in ("better", "worse", "same", "only in A", "only in B", "n/a")},
    }


def format_comparison(cmp: dict[str, Any]) -> str:
    """A fixed-width table: run, column, A, B, delta and verdict."""
    from polymodal.leaderboard import format_value

    header = ("run", "column", "A", "B", "delta", "")
    lines = [header]
    for r in cmp["rows"]:
        d = r["delta"]
        delta = "—" if d is None else "±0" if r["verdict"] == "same" else f"{d:+.4f}" if abs(d) >= 1e-4 or d == 0 else f"{d:+.1e}"
        mark = {"better": "▲ better", "worse": "▼ worse"}.get(r["verdict"], r["verdict"])
        lines.append((r["run"], r["column"] + (" ↑" if r["higher_is_better"] else " ↓"),
                      format_value(r["a"], 4), format_value(r["b"], 4), delta, mark))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = [f"A = {cmp['a']}", f"B = {cmp['b']}", ""]
    for i, line in enumerate(lines):
        cells = [str(c).ljust(w) if j < 2 or j == 5 else str(c).rjust(w) for j, (c, w) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    s = cmp["summary"]
    out += ["", f"{s['better']} better, {s['worse']} worse, {s['same']} unchanged in B relative to A"]
    for side in ("a", "b"):
        if cmp[f"runs_only_in_{side}"]:
            out.append(f"runs only in {side.upper()}: {', '.join(cmp[f'runs_only_in_{side}'])}")
    return "\n".join(out)


def make_command(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("a", metavar="A", help="baseline results folder")
    parser.add_argument("b", metavar="B", help="results folder compared against A")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")

    def handler(args: argparse.Namespace) -> int:
        import json
        import sys

        from polymodal.report import load_results

        cmp = compare_folders(load_results(args.a), load_results(args.b))
        if args.json:
            json.dump(cmp, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(format_comparison(cmp))
        return 0

    return handler


plugin = component("commands", "compare", "polymodal_plugins.commands.compare:make_command",
                   description="Compare two results folders side by side, with deltas per run and metric.")
