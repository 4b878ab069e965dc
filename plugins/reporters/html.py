"""The ``html`` reporter: one self-contained page that answers "which is better, where, and why".

Self-contained means the page makes no network request: CSS and the small
sorting script are inline and every image (matplotlib charts and the run's
artifact PNGs) is embedded as a base64 ``data:`` URI, so the file can be
mailed, attached to CI or opened offline. All text from the results folder is
HTML-escaped; artifact paths must stay inside the folder.

Sections: leaderboard (sortable, best per column marked), overview bars,
robustness curves (metric vs severity), adversarial curves (metric vs
epsilon), one section per registered report section (retrieval and captioning
examples, generated images, attention heatmaps, modality importance, a
plugin's own artifact kinds: :mod:`polymodal.report_sections`), training
curves, failed runs with tracebacks, every measurement per axis, and the
manifest.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from polymodal import __version__
from polymodal.errors import DataError
from polymodal.leaderboard import (RUN_KEYS, Column, Leaderboard, ablations, build_leaderboard, format_interval,
                                   format_value)
from polymodal.plugins import get_plugins
from polymodal.report import Progress, ResultsFolder, load_results
from polymodal.report_sections import report_sections, unrendered_kinds
from polymodal_plugins.reporters import html_charts as charts

#: Per axis, at most this many rows go into the "all measurements" tables; the JSON report has every row.
MAX_TABLE_ROWS = 1500


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class _Page:
    """Collects sections and the images that could not be embedded."""

    def __init__(self, folder: ResultsFolder, progress: Progress | None, colours: dict[str, str] | None = None):
        self.folder = folder
        self.colours = colours or {}
        self.sections: list[tuple[str, str, str]] = []  # id, title, body
        self.missing: list[str] = []
        self.progress = progress

    def step(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    def add(self, sid: str, title: str, body: str) -> None:
        if body:
            self.sections.append((sid, title, body))

    def chart(self, chart: bytes | charts.Chart | None, alt: str) -> str:
        """A chart image; a :class:`~charts.Chart`'s spec is embedded beside it as JSON data."""
        if chart is None:
            return ""
        spec = ""
        if isinstance(chart, charts.Chart):
            data = json.dumps(chart.spec, ensure_ascii=True, allow_nan=False).replace("</", "<\\/")
            spec = f'<script type="application/json" class="chart-spec">{data}</script>'
            chart = chart.png
        png = chart
        # Show every chart at the same scale (figure inches -> CSS pixels), shrinking only to fit.
        width = int(int.from_bytes(png[16:20], "big") * 96 / charts.DPI)
        return (f'<figure><img class="chart" alt="{esc(alt)}" width="{width}" '
                f'src="{_data_uri(png)}">{spec}</figure>')

    def image(self, relative: str | None, alt: str, cls: str = "artifact") -> str:
        """An artifact image embedded from the folder, or a visible note saying why it is not."""
        if not relative:
            return ""
        try:
            data, mime = self.folder.read_image(relative)
        except DataError as exc:
            self.missing.append(str(exc))
            return f'<div class="missing">image unavailable: {esc(relative)}</div>'
        return f'<img class="{cls}" alt="{esc(alt)}" src="{_data_uri(data, mime)}">'


def _conditions_text(conditions: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in conditions.items() if k not in RUN_KEYS)


def _leaderboard(board: Leaderboard, folder: ResultsFolder, colours: dict[str, str]) -> str:
    axes = list(dict.fromkeys(c.axis for c in board.columns))
    group = "".join(f'<th colspan="{sum(c.axis == a for c in board.columns)}" class="axis">{esc(a)}</th>'
                    for a in axes)
    heads = "".join(
        f'<th class="num sortable" data-col="{i + 1}" data-higher="{int(c.higher_is_better is True)}" '
        f'title="{esc(c.key + ": " + c.note)}">{esc(c.metric)} <span class="dir">'
        f'{c.arrow}</span></th>'
        for i, c in enumerate(board.columns))
    body = []
    for run in board.runs:
        info = folder.run(run)
        status = info.status if info else "unknown"
        badge = f'<span class="badge {esc(status)}">{esc(status)}</span>' if status not in ("complete", "unknown") else ""
        cells = []
        for c in board.columns:
            v = board.value(run, c.key)
            sort = "" if v is None or not math.isfinite(v) else repr(v)
            cls = "num best" if board.is_best(run, c.key) else "num tie" if board.is_tied(run, c.key) else "num"
            star = (' <span class="star">★</span>' if board.is_best(run, c.key)
                    else ' <span class="tie-mark" title="not significantly different from the leader">≈</span>'
                    if board.is_tied(run, c.key) else "")
            interval = board.interval(run, c.key)
            ci = (f'<span class="ci" data-low="{interval.low!r}" data-high="{interval.high!r}">'
                  f'{esc(format_interval(interval))}</span>' if interval else "")
            cells.append(f'<td class="{cls}" data-v="{sort}">{esc(format_value(v))}{star}{ci}</td>')
        body.append(f'<tr><td class="run" data-v="{esc(run)}"><span class="dot" style="background:{colours[run]}">'
                    f'</span>{esc(run)} {badge}</td>{"".join(cells)}</tr>')
    notes = [f"<li><b>{esc(c.key)}</b>: {esc(c.note)}</li>" for c in board.columns if c.averaged_over]
    notes += [f"<li><b>{esc(key)}</b>: {esc(note)}</li>" for key, note in board.best_notes.items()]
    return (
        '<p class="hint">Click a column to sort. Small print under a value is its 95 % bootstrap interval. '
        "★ marks a best that a paired test finds significantly better than every other run (p &lt; 0.05); "
        "≈ marks runs the leader cannot be told apart from. "
        "Cells that aggregate several measurements are averaged as noted below; every single "
        "measurement is listed under <a href=\"#measurements\">All measurements</a>.</p>"
        '<div class="scroll"><table id="lb-table" class="lb"><thead>'
        f'<tr><th></th>{group}</tr><tr><th class="sortable" data-col="0" data-higher="0">run</th>{heads}</tr>'
        f'</thead><tbody>{"".join(body)}</tbody></table></div>'
        + (f'<details class="notes"><summary>How cells are aggregated</summary><ul>{"".join(notes)}</ul>'
           "<p>Rows with an epoch or step condition keep only the last one.</p></details>" if notes else "")
    )


def _ablations(found: list[Any]) -> str:
    """Paired comparisons of each run with the column's leader, per one-setting sweep."""
    out = []
    for ab in found:
        body = []
        for key, entries in ab.comparisons.items():
            for e in entries:
                iv = e["interval"]
                ci = f" [{iv['low']:+.3f}, {iv['high']:+.3f}]" if iv else ""
                sig = "sig" if e["p_adjusted"] < 0.05 else "ns"
                body.append(f'<tr class="{sig}"><td>{esc(key)}</td><td>{esc(e["run"])}</td><td>{esc(e["leader"])}</td>'
                            f'<td class="num">{e["difference"]:+.3f}{esc(ci)}</td>'
                            f'<td class="num">{e["p_value"]:.3g} ({e["p_adjusted"]:.3g})</td></tr>')
        out.append(f'<h3>{esc(ab.key)} <span class="meta">{esc(ab.label)}</span></h3>'
                   '<div class="scroll"><table class="lb ablation"><thead><tr><th>column</th><th>run</th>'
                   '<th>vs leader</th><th class="num">difference [95 % CI]</th><th class="num">p (Holm)</th></tr>'
                   f'</thead><tbody>{"".join(body)}</tbody></table></div>')
    return ('<p class="hint">Runs that differ in one swept setting, each compared with the column\'s leader on the '
            "same samples: paired bootstrap interval of the difference and sign-flip p-value, Holm-adjusted over "
            "each table.</p>" + "".join(out))


def _seed_groups(board: Leaderboard) -> str:
    """Runs that differ only in their seed: mean ± standard deviation, seed count and t-interval."""
    heads = "".join(f'<th class="num">{esc(c.axis)} · {esc(c.metric)} {"↑" if c.higher_is_better else "↓"}</th>'
                    for c in board.columns)
    body = []
    for label, (members, summaries) in board.seed_groups.items():
        cells = []
        for c in board.columns:
            s = summaries.get(c.key)
            if s is None:
                cells.append('<td class="num">—</td>')
                continue
            ci = (f'<span class="ci" data-low="{s.interval.low!r}" data-high="{s.interval.high!r}">'
                  f'{esc(format_interval(s.interval))}</span>' if s.interval else "")
            cells.append(f'<td class="num">{esc(format_value(s.mean))} ± {esc(format_value(s.std))} '
                         f'<span class="meta">n={s.n}</span>{ci}</td>')
        body.append(f'<tr><td class="run">{esc(label)}</td>{"".join(cells)}</tr>')
    return ('<p class="hint">Mean ± sample standard deviation over seeds, n = seed count; the small print is '
            'the 95 % Student-t interval of the mean.</p>'
            f'<div class="scroll"><table class="lb seeds"><thead><tr><th>runs</th>{heads}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _unit_columns(board: Leaderboard) -> list[Column]:
    """Columns whose values all lie in [0, 1], so they share one overview axis.

    Columns that only one run has compare nothing and are left to the
    leaderboard, unless no column is shared at all.
    """
    unit, shared = [], []
    for c in board.columns:
        vals = [board.value(r, c.key) for r in board.runs]
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        if vals and all(0.0 <= v <= 1.0 for v in vals):
            unit.append(c)
            if len(vals) > 1:
                shared.append(c)
    return shared or unit


def _split_by_metric(rows: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r.metric, []).append(r)
    return out


def _robustness(page: _Page, colours: dict[str, str]) -> None:
    folder = page.folder
    body = []
    noise = [r for r in folder.rows_of("robustness.noise") if "severity" in r.conditions]
    for metric, rows in _split_by_metric(noise).items():
        page.step(f"chart: robustness curves ({metric})")
        body.append(page.chart(charts.curves(rows, "severity", ("modality", "corruption"), colours, "severity",
                                             f"{metric} vs corruption severity"), f"{metric} vs severity"))
    page.add("robustness", "Robustness to corruptions", "".join(body))
    body = []
    adv = [r for r in folder.rows_of("robustness.adversarial") if "epsilon" in r.conditions]
    for metric, rows in _split_by_metric(adv).items():
        page.step(f"chart: adversarial curves ({metric})")
        body.append(page.chart(charts.curves(rows, "epsilon", ("attack", "modality"), colours, "epsilon",
                                             f"{metric} vs attack strength"), f"{metric} vs epsilon"))
    page.add("adversarial", "Adversarial robustness", "".join(body))


def _sections(page: _Page) -> None:
    """Artifacts through the registered report sections: the page knows no artifact kind."""
    sections = report_sections(get_plugins())
    for name, section in sections:
        page.add(name, section.title, section.html(page.folder.artifacts_of(section.artifact_kind), page))
    page.missing.extend(unrendered_kinds(page.folder, sections))


def _training(page: _Page, colours: dict[str, str]) -> None:
    rows = [r for r in page.folder.rows_of("train") if "epoch" in r.conditions or "step" in r.conditions]
    if not rows:
        return
    x_key = "epoch" if any("epoch" in r.conditions for r in rows) else "step"
    page.step("chart: training curves")
    rows = [r for r in rows if x_key in r.conditions]
    # One panel per metric: curves() panels by condition keys, so stamp the metric in.
    stamped = [type(r)(axis=r.axis, metric=r.metric, value=r.value, run=r.run,
                       conditions={**r.conditions, "metric": r.metric}, extra=r.extra) for r in rows]
    page.add("training", "Training curves",
             page.chart(charts.curves(stamped, x_key, ("metric",), colours, x_key, "training"), "training curves"))


def _failures(page: _Page) -> None:
    items = [f'<details class="failure"><summary><b>{esc(r.id)}</b>: '
             f'{esc((r.error or "failed").strip().splitlines()[-1])}</summary><pre>{esc(r.error or "")}</pre></details>'
             for r in page.folder.runs if r.status == "failed"]
    page.add("failures", "Failed runs", "".join(items))


def _measurements(page: _Page) -> None:
    by_axis: dict[str, list[Any]] = {}
    for r in page.folder.metric_rows:
        by_axis.setdefault(r.axis, []).append(r)
    parts = []
    for axis in by_axis:  # the order the suite ran its axes in
        rows = by_axis[axis]
        shown = rows[:MAX_TABLE_ROWS]
        trs = "".join(f'<tr><td>{esc(r.run)}</td><td>{esc(r.metric)}</td><td class="cond">'
                      f'{esc(_conditions_text(r.conditions))}</td><td class="num">{esc(format_value(r.value, 4))}</td></tr>'
                      for r in shown)
        more = (f'<p class="hint">{len(rows) - len(shown)} more rows are in report.json.</p>'
                if len(rows) > len(shown) else "")
        parts.append(f'<details><summary>{esc(axis)} <span class="meta">({len(rows)} rows)</span></summary>'
                     f'<div class="scroll"><table class="plain"><thead><tr><th>run</th><th>metric</th>'
                     f'<th>conditions</th><th class="num">value</th></tr></thead><tbody>{trs}</tbody></table></div>'
                     f"{more}</details>")
    page.add("measurements", "All measurements", "".join(parts))


def _manifest(page: _Page) -> None:
    m = page.folder.manifest
    if m is None:
        page.add("manifest", "Manifest", '<p class="missing">manifest.json is missing.</p>')
        return
    versions = m.get("versions") if isinstance(m.get("versions"), dict) else {}
    facts = [("polymodal", m.get("polymodal_version")), ("python", versions.get("python")),
             ("torch", versions.get("torch")), ("device", m.get("device")), ("seeds", m.get("seeds")),
             ("started", m.get("started")), ("finished", m.get("finished"))]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts if v not in (None, "", []))
    plugins = versions.get("plugins") if isinstance(versions.get("plugins"), dict) else {}
    plugin_rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in sorted(plugins.items()))
    run_rows = "".join(f"<tr><td>{esc(r.id)}</td><td>{esc(r.model or '')}</td><td>{esc(r.fusion or '')}</td>"
                       f"<td>{esc(r.dataset or '')}</td><td>{esc('' if r.seed is None else r.seed)}</td>"
                       f"<td>{esc(r.status)}</td></tr>" for r in page.folder.runs)
    body = (f'<dl class="facts">{dl}</dl>'
            '<div class="scroll"><table class="plain"><thead><tr><th>run</th><th>model</th><th>fusion</th>'
            f'<th>dataset</th><th>seed</th><th>status</th></tr></thead><tbody>{run_rows}</tbody></table></div>'
            + (f'<details><summary>plugin versions ({len(plugins)})</summary><table class="plain"><tbody>'
               f"{plugin_rows}</tbody></table></details>" if plugins else "")
            + f'<details><summary>resolved suite</summary><pre>{esc(json.dumps(m.get("suite"), indent=2, default=str))}'
            "</pre></details>")
    page.add("manifest", "Manifest", body)


def render_html(folder: ResultsFolder, progress: Progress | None = None) -> str:
    """The whole page as a string."""
    board = build_leaderboard(folder.rows, [r.id for r in folder.runs])
    colours = charts.run_colours(board.runs)
    page = _Page(folder, progress, colours)
    page.step("leaderboard")
    if board.columns:
        page.add("leaderboard", "Leaderboard", _leaderboard(board, folder, colours))
        if board.seed_groups:
            page.add("seeds", "Over seeds", _seed_groups(board))
        found = ablations(board)
        if found:
            page.add("ablations", "Ablations", _ablations(found))
        unit = _unit_columns(board)
        page.step("chart: overview")
        page.add("overview", "Overview",
                 page.chart(charts.overview_bars(board, unit, colours), "overview of the axes per run")
                 + '<p class="hint">Leaderboard metrics on a 0–1 scale that several runs share; '
                 'the rest are in the leaderboard.</p>'
                 if unit else "")
    else:
        page.add("leaderboard", "Leaderboard", '<p class="missing">No scored results yet.</p>')
    steps: list[Callable[[], None]] = [
        lambda: _robustness(page, colours), lambda: _sections(page),
        lambda: _training(page, colours), lambda: _failures(page), lambda: _measurements(page),
        lambda: _manifest(page),
    ]
    for step in steps:
        step()
    problems = list(folder.problems) + page.missing
    if problems:
        page.add("notes", "Notes", "<ul>" + "".join(f"<li>{esc(p)}</li>" for p in problems) + "</ul>")

    m = folder.manifest or {}
    suite = m.get("suite") if isinstance(m.get("suite"), dict) else {}
    title = f"polymodal report · {suite.get('name')}" if suite.get("name") else "polymodal report"
    failed = sum(r.status == "failed" for r in folder.runs)
    stats = [(len(folder.runs), "runs"), (len(board.columns), "leaderboard metrics"),
             (len(folder.metric_rows), "measurements"), (len(folder.artifacts), "examples")]
    if failed:
        stats.append((failed, "failed"))
    stat_html = "".join(f'<div class="stat{" bad" if label == "failed" else ""}"><b>{n}</b><span>{esc(label)}</span>'
                        "</div>" for n, label in stats)
    subtitle = " · ".join(esc(x) for x in (m.get("device") and f"device {m['device']}",
                                             m.get("finished") and f"finished {m['finished']}",
                                             str(folder.root)) if x)
    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t, _ in page.sections)
    sections = "".join(f'<section id="{sid}"><h2>{esc(t)}</h2>{body}</section>' for sid, t, body in page.sections)
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
            f'style-src \'unsafe-inline\'; script-src \'unsafe-inline\'">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f'<header><div class="wrap"><h1>{esc(title)}</h1><div class="sub">{subtitle}</div>'
            f'<div class="stats">{stat_html}</div></div></header>'
            f'<nav><div class="wrap">{nav}</div></nav><main class="wrap">{sections}</main>'
            f'<footer class="wrap">generated by polymodal {esc(__version__)} on {esc(generated)}</footer>'
            f"<script>{_JS}</script></body></html>")


class HtmlReporter:
    """Writes :func:`render_html` to one ``.html`` file."""

    extension = ".html"

    def __call__(self, results_dir: str | Path, out_path: str | Path, progress: Progress | None = None) -> Path:
        text = render_html(load_results(results_dir), progress)
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return out


_CSS = """
:root{--ink:#1f2328;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;--accent:#0072B2;--good:#e7f6ec;
--goodink:#0b6b2f;--bad:#b42318}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
.wrap{max-width:1280px;margin:0 auto;padding:0 24px}
header{background:linear-gradient(120deg,#0b3954,#0072B2);color:#fff;padding:22px 0 18px}
header h1{margin:0;font-size:24px;font-weight:650;letter-spacing:-.01em}.sub{opacity:.8;font-size:13px;margin-top:2px}
.stats{display:flex;gap:12px;margin-top:14px;flex-wrap:wrap}
.stat{background:rgba(255,255,255,.12);border-radius:10px;padding:6px 14px;display:flex;gap:8px;align-items:baseline}
.stat b{font-size:20px}.stat span{opacity:.85;font-size:12.5px}.stat.bad{background:rgba(255,120,100,.3)}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line)}
nav .wrap{display:flex;gap:4px;overflow-x:auto;padding-top:6px;padding-bottom:6px}
nav a{color:var(--muted);text-decoration:none;padding:4px 10px;border-radius:6px;white-space:nowrap;font-size:13px}
nav a:hover{background:var(--bg);color:var(--ink)}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 22px;margin:18px 0;
box-shadow:0 1px 2px rgba(16,24,40,.04)}
h2{margin:0 0 12px;font-size:17px}
.hint{color:var(--muted);font-size:12.5px;margin:4px 0 10px}.meta{color:var(--muted);font-size:12px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px}
table.lb{min-width:100%}
.lb th,.lb td{padding:6px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
.lb thead th{position:sticky;top:0;background:#fafbfc;font-weight:600;font-size:12.5px}
.lb th.axis{text-align:center;color:var(--accent);border-left:2px solid #fff;background:#eef5fb;font-size:12px}
.lb th.sortable{cursor:pointer;user-select:none}.lb th.sortable:hover{background:#eef1f5}
.lb th.sorted-asc::after{content:" ▲";font-size:9px}.lb th.sorted-desc::after{content:" ▼";font-size:9px}
.lb tbody tr:hover{background:#f9fafb}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{background:var(--good);color:var(--goodink);font-weight:700}.star{color:#d4a106}
.ci{display:block;font-size:.75em;font-weight:400;color:var(--muted,#666)}td.tie{background:rgba(127,127,127,.08)}.tie-mark{color:#888}
.dir{color:var(--muted);font-weight:400}
.run{font-weight:550}.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:8px;
vertical-align:middle}
.badge{font-size:11px;border-radius:10px;padding:1px 8px;margin-left:6px;background:#eef1f5;color:var(--muted)}
.badge.failed{background:#fee4e2;color:var(--bad)}
figure{margin:8px 0}img.chart{max-width:100%;height:auto;display:block}
.lb td.run,.lb thead tr:last-child th:first-child{position:sticky;left:0;background:#fff;z-index:1}
.lb thead tr:last-child th:first-child{background:#fafbfc;z-index:2}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:14px}
.card{border:1px solid var(--line);border-radius:10px;padding:12px 14px;background:#fcfcfd}
.card.caption{display:flex;gap:14px}.card.wide{margin-top:12px}
.query{display:flex;align-items:center;gap:10px;margin:6px 0 8px}
.label{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.qtext{font-weight:550}
ol.topk{list-style:none;margin:0;padding:0}
ol.topk li{display:flex;align-items:center;gap:10px;padding:5px 8px;border-radius:8px;margin:3px 0;
border:1px solid var(--line)}
ol.topk li.hit{background:var(--good);border-color:#a6dcb8}
.rank{color:var(--muted);width:22px}.score{margin-left:auto;font-variant-numeric:tabular-nums;color:var(--muted)}
.mark{color:var(--goodink);font-weight:700;width:42px;text-align:right}
img.thumb{width:56px;height:56px;object-fit:cover;border-radius:6px;border:1px solid var(--line)}
img.thumb.big{width:128px;height:128px}
.generated{font-size:15px;font-weight:600;margin:2px 0 6px}ul.refs{margin:2px 0 8px;padding-left:18px;color:#344054}
.pill{display:inline-block;background:#eef5fb;color:#0b3954;border-radius:10px;padding:1px 9px;margin:2px 4px 0 0;
font-size:12px}
.tiles{display:flex;flex-wrap:wrap;gap:16px}.tile{margin:0;text-align:center;font-size:12.5px;width:140px}
.tokens{line-height:2.1;font-size:15px}.tok{padding:2px 5px;border-radius:4px;margin-right:1px}
details{margin:6px 0}summary{cursor:pointer;font-weight:550}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:8px;overflow:auto;font-size:12px;max-height:420px}
table.plain th,table.plain td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left}
td.cond{color:var(--muted);font-size:12px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0 0 12px}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;font-weight:550}
.missing{color:var(--bad);font-size:12.5px}
.failure summary{color:var(--bad)}
footer{color:var(--muted);font-size:12px;padding:8px 24px 28px}
"""

# Sorting: numbers compare as numbers, missing values always sink to the bottom,
# and the first click sorts the better end to the top (descending when higher is better).
_JS = """
(function(){
  var table=document.getElementById('lb-table'); if(!table) return;
  var heads=table.querySelectorAll('th.sortable');
  heads.forEach(function(th){th.addEventListener('click',function(){
    var col=+th.dataset.col, tbody=table.tBodies[0];
    var desc=th.classList.contains('sorted-desc')?false:th.classList.contains('sorted-asc')?true:th.dataset.higher==='1';
    var rows=Array.prototype.slice.call(tbody.rows);
    rows.sort(function(a,b){
      var x=a.cells[col].dataset.v, y=b.cells[col].dataset.v;
      if(x===''&&y==='') return 0; if(x==='') return 1; if(y==='') return -1;
      var nx=parseFloat(x), ny=parseFloat(y), c;
      c=(isNaN(nx)||isNaN(ny))?x.localeCompare(y):nx-ny;
      return desc?-c:c;});
    rows.forEach(function(r){tbody.appendChild(r);});
    heads.forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
    th.classList.add(desc?'sorted-desc':'sorted-asc');
  });});
})();
"""
