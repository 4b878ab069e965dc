"""The ``markdown`` reporter: a summary to paste into a README or a pull request.

It opens with an overview table (runs x axes, one headline metric per axis)
and follows with one table per axis holding every leaderboard metric of that
axis. Each value carries its 95 % bootstrap interval ``[low, high]`` when
the rows kept per-sample scores. The best value of a column is bold and
starred only when a paired test finds it better than every other run; runs
that cannot be told apart are marked ≈ (tied). Arrows say which direction is
better; failed runs are listed with their error; suites with several seeds
get an "Over seeds" table (mean ± standard deviation, seed count). Numbers come
from :mod:`polymodal.leaderboard`, so they equal the HTML and JSON reports.
"""

from __future__ import annotations

from pathlib import Path

from polymodal.leaderboard import Column, Leaderboard, ablations, build_leaderboard, format_interval, format_value
from polymodal.plugins import get_plugins
from polymodal.report import Progress, ResultsFolder, load_results
from polymodal.report_sections import report_sections, unrendered_kinds


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _arrow(col: Column) -> str:
    return col.arrow


def headline_columns(board: Leaderboard) -> list[Column]:
    """Per axis, the column with values for the most runs (first on ties): the axis's headline."""
    out: dict[str, Column] = {}
    for col in board.columns:
        filled = sum(board.value(r, col.key) is not None for r in board.runs)
        best = out.get(col.axis)
        if best is None or filled > sum(board.value(r, best.key) is not None for r in board.runs):
            out[col.axis] = col
    return list(out.values())


def _value(board: Leaderboard, run: str, col: Column) -> str:
    text = format_value(board.value(run, col.key))
    if board.is_best(run, col.key):
        text = f"**{text}** ★"
    elif board.is_tied(run, col.key):
        text = f"{text} ≈"
    interval = format_interval(board.interval(run, col.key))
    return f"{text} {interval}" if interval else text


def _seed_table(board: Leaderboard, columns: list[Column]) -> list[str]:
    lines = ["| runs (seeds) | " + " | ".join(_cell(f"{c.axis} · {c.metric} {_arrow(c)}") for c in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for label, (members, summaries) in board.seed_groups.items():
        cells = []
        for c in columns:
            s = summaries.get(c.key)
            cells.append("—" if s is None else f"{format_value(s.mean)} ± {format_value(s.std)} (n={s.n})")
        lines.append(f"| {_cell(label)} ({len(members)}) | " + " | ".join(cells) + " |")
    return lines


def _table(board: Leaderboard, runs: list[str], columns: list[Column], header: list[str],
           failed: frozenset[str] = frozenset()) -> list[str]:
    lines = ["| run | " + " | ".join(_cell(h) for h in header) + " |",
             "|---|" + "---:|" * len(columns)]
    for run in runs:
        label = f"{_cell(run)} ✗ failed" if run in failed else _cell(run)
        lines.append(f"| {label} | " + " | ".join(_value(board, run, c) for c in columns) + " |")
    return lines


def render_markdown(folder: ResultsFolder) -> str:
    board = build_leaderboard(folder.rows, [r.id for r in folder.runs])
    manifest = folder.manifest or {}
    suite = manifest.get("suite") or {}
    title = suite.get("name") if isinstance(suite, dict) else None
    lines = [f"# polymodal report{f': {_cell(str(title))}' if title else ''}", ""]
    failed = [r for r in folder.runs if r.status == "failed"]
    facts = [f"{len(folder.runs)} runs ({len(failed)} failed)" if failed else f"{len(folder.runs)} runs",
             f"{len(folder.metric_rows)} measurements"]
    for key, label in (("device", "device"), ("started", "started"), ("finished", "finished")):
        if manifest.get(key):
            facts.append(f"{label} {manifest[key]}")
    versions = manifest.get("versions") or {}
    if manifest.get("polymodal_version"):
        facts.append(f"polymodal {manifest['polymodal_version']}")
    if isinstance(versions, dict) and versions.get("torch"):
        facts.append(f"torch {versions['torch']}")
    lines += [" · ".join(_cell(str(f)) for f in facts), ""]

    if not board.columns:
        lines += ["_No scored results yet._", ""]
    else:
        heads = headline_columns(board)
        lines += ["## Leaderboard", "",
                  "Value [95 % bootstrap interval] · **bold** ★ best, significantly (paired test, p < 0.05) · "
                  "≈ tied with the leader · ↑ higher is better · ↓ lower is better.", ""]
        lines += _table(board, list(board.runs), heads, [f"{c.axis} · {c.metric} {_arrow(c)}" for c in heads],
                        frozenset(r.id for r in failed))
        lines.append("")
        if board.seed_groups:
            lines += ["### Over seeds", "", "Mean ± sample standard deviation over seeds (n = seed count).", ""]
            lines += _seed_table(board, heads)
            lines.append("")
        for ab in ablations(board):
            lines += [f"### Ablation: {_cell(ab.key)} ({_cell(ab.label)})", "",
                      "Each run against the column's leader on the same samples: difference [95 % paired "
                      "bootstrap interval], sign-flip p-value (Holm-adjusted over this table).", "",
                      "| column | run | vs leader | difference | p (adj.) |", "|---|---|---|---:|---:|"]
            for key, entries in ab.comparisons.items():
                for e in entries:
                    iv = e["interval"]
                    ci = f" [{iv['low']:+.3f}, {iv['high']:+.3f}]" if iv else ""
                    lines.append(f"| {_cell(key)} | {_cell(e['run'])} | {_cell(e['leader'])} | "
                                 f"{e['difference']:+.3f}{ci} | {e['p_value']:.3g} ({e['p_adjusted']:.3g}) |")
            lines.append("")
        for axis in dict.fromkeys(c.axis for c in board.columns):
            cols = [c for c in board.columns if c.axis == axis]
            runs = [r for r in board.runs if any(board.value(r, c.key) is not None for c in cols)]
            lines += [f"### {axis}", ""]
            lines += _table(board, runs, cols, [f"{c.metric} {_arrow(c)}" for c in cols])
            notes = [f"{c.metric}: mean over {', '.join(c.averaged_over)}" for c in cols if c.averaged_over]
            if notes:
                lines += ["", "_" + "; ".join(_cell(n) for n in notes) + "._"]
            lines.append("")
    if failed:
        lines += ["## Failed runs", ""]
        for r in failed:
            last = (r.error or "failed").strip().splitlines()[-1]
            lines.append(f"- `{r.id}`: {_cell(last)}")
        lines.append("")
    sections = report_sections(get_plugins())
    page = _MarkdownPage(folder)
    for _name, section in sections:
        artifacts = folder.artifacts_of(section.artifact_kind)
        body = section.markdown(artifacts, page) if section.markdown is not None and artifacts else ""
        if body:
            lines += [f"## {section.title}", "", body, ""]
    problems = list(folder.problems) + unrendered_kinds(folder, sections)
    if problems:
        lines += ["## Notes", ""] + [f"- {_cell(p)}" for p in problems] + [""]
    return "\n".join(lines)


class _MarkdownPage:
    """The :class:`polymodal.report_sections.SectionPage` of the Markdown report: images are relative links."""

    def __init__(self, folder: ResultsFolder):
        self.folder = folder
        self.colours: dict[str, str] = {}

    def image(self, relative: str | None, alt: str, cls: str = "artifact") -> str:
        return f"![{_cell(alt)}]({relative})" if relative else ""


class MarkdownReporter:
    """Writes :func:`render_markdown` to a ``.md`` file."""

    extension = ".md"

    def __call__(self, results_dir: str | Path, out_path: str | Path, progress: Progress | None = None) -> Path:
        text = render_markdown(load_results(results_dir))
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return out
