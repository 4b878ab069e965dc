"""``polymodal compare A B``: two results folders side by side, with deltas.

Runs are matched by id and cells by leaderboard column, using the same
aggregation as the reports (:mod:`polymodal.leaderboard`), so a delta here is
exactly the difference of the two reports' numbers. A delta is marked better
or worse according to the metric's direction; runs or columns present on one
side only are listed, never silently dropped.

Where both cells kept per-sample scores for the same samples, the delta is
tested: a paired sign-flip permutation test (exact up to 16 samples, seeded
Monte Carlo above) gives the p-value and a paired bootstrap the interval of
the difference, and the p-values of all tested cells are corrected together
(Holm by default) for the number of comparisons. A delta whose adjusted
p-value is not below ``--alpha`` is reported as "not significant", not as
better or worse. The same ``--seed`` gives the same numbers on every run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import attrs

from polymodal import component


def compare_folders(a: Any, b: Any, *, resamples: int = 1000, seed: int = 0, correction: str = "holm",
                    alpha: float = 0.05) -> dict[str, Any]:
    """The comparison of two loaded :class:`~polymodal.report.ResultsFolder` objects as a JSON-able dict."""
    import math

    from polymodal.leaderboard import build_leaderboard
    from polymodal.stats import adjust, paired_test

    board_a = build_leaderboard(a.rows, [r.id for r in a.runs], resamples=resamples, seed=seed)
    board_b = build_leaderboard(b.rows, [r.id for r in b.runs], resamples=resamples, seed=seed)
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
            row = {"run": run, "column": key, "higher_is_better": col.higher_is_better,
                   "a": va, "b": vb, "delta": delta, "verdict": verdict, "test": None}
            ca, cb = board_a.cells.get((run, key)), board_b.cells.get((run, key))
            if (delta is not None and ca is not None and cb is not None and ca.samples is not None
                    and cb.samples is not None and ca.sample_ids == cb.sample_ids):
                row["test"] = paired_test(cb.samples, ca.samples, resamples=resamples, seed=seed)
            rows.append(row)
    tested = [r for r in rows if r["test"] is not None]
    for r, p_adj in zip(tested, adjust([r["test"].p_value for r in tested], correction), strict=True):
        r["test"] = attrs.evolve(r["test"], p_adjusted=p_adj)
        if r["verdict"] in ("better", "worse") and p_adj >= alpha:
            r["verdict"] = "not significant"
    for r in rows:
        r["test"] = r["test"].to_json() if r["test"] is not None else None
    return {
        "a": str(a.root), "b": str(b.root),
        "statistics": {"test": "paired sign-flip permutation; paired bootstrap interval", "resamples": resamples,
                       "seed": seed, "correction": correction, "alpha": alpha, "tested": len(tested)},
        "runs_only_in_a": [r for r in board_a.runs if r not in board_b.runs],
        "runs_only_in_b": [r for r in board_b.runs if r not in board_a.runs],
        "rows": rows,
        "summary": {v: sum(r["verdict"] == v for r in rows)
                    for v in ("better", "worse", "not significant", "same", "only in A", "only in B", "n/a")},
    }


def format_comparison(cmp: dict[str, Any]) -> str:
    """A fixed-width table: run, column, A, B, delta and verdict."""
    from polymodal.leaderboard import format_value

    header = ("run", "column", "A", "B", "delta", "95% CI of delta", "p (adj.)", "")
    lines = [header]
    for r in cmp["rows"]:
        d = r["delta"]
        delta = "—" if d is None else "±0" if r["verdict"] == "same" else f"{d:+.4f}" if abs(d) >= 1e-4 or d == 0 else f"{d:+.1e}"
        mark = {"better": "▲ better", "worse": "▼ worse"}.get(r["verdict"], r["verdict"])
        test = r.get("test")
        ci = p = ""
        if test:
            interval = test.get("interval")
            ci = f"[{interval['low']:+.4f}, {interval['high']:+.4f}]" if interval else ""
            p = f"{test['p_value']:.3g} ({test['p_adjusted']:.3g})"
        lines.append((r["run"], r["column"] + (" ↑" if r["higher_is_better"] else " ↓"),
                      format_value(r["a"], 4), format_value(r["b"], 4), delta, ci, p, mark))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = [f"A = {cmp['a']}", f"B = {cmp['b']}", ""]
    for i, line in enumerate(lines):
        cells = [str(c).ljust(w) if j < 2 or j == 7 else str(c).rjust(w) for j, (c, w) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    s = cmp["summary"]
    st = cmp.get("statistics") or {}
    out += ["", f"{s['better']} better, {s['worse']} worse, {s['not significant']} not significant, "
                f"{s['same']} unchanged in B relative to A"]
    if st:
        out.append(f"{st['tested']} deltas tested on shared samples ({st['test']}; {st['resamples']} resamples, "
                   f"seed {st['seed']}, {st['correction']} correction, alpha {st['alpha']:g})")
    for side in ("a", "b"):
        if cmp[f"runs_only_in_{side}"]:
            out.append(f"runs only in {side.upper()}: {', '.join(cmp[f'runs_only_in_{side}'])}")
    return "\n".join(out)


def make_command(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("a", metavar="A", help="baseline results folder")
    parser.add_argument("b", metavar="B", help="results folder compared against A")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--resamples", type=int, default=1000, metavar="N",
                        help="bootstrap resamples / Monte Carlo permutations per test (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every resampling (default 0)")
    parser.add_argument("--correction", choices=("holm", "bh", "none"), default="holm",
                        help="multiple-comparison correction of the p-values (default holm)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")

    def handler(args: argparse.Namespace) -> int:
        import json
        import sys

        from polymodal.report import load_results

        if args.resamples < 1 or not 0 < args.alpha < 1:
            print("polymodal compare: --resamples must be >= 1 and --alpha in (0, 1)", file=sys.stderr)
            return 2
        cmp = compare_folders(load_results(args.a), load_results(args.b), resamples=args.resamples,
                              seed=args.seed, correction=args.correction, alpha=args.alpha)
        if args.json:
            json.dump(cmp, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(format_comparison(cmp))
        return 0

    return handler


plugin = component("commands", "compare", "polymodal_plugins.commands.compare:make_command",
                   description="Compare two results folders side by side, with deltas per run and metric.")
