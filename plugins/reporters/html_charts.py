"""Matplotlib charts for the HTML report, each returned as PNG bytes.

Charts that a reader must not misread (the overview and the metric-vs-
condition curves) come back as a :class:`Chart`: the PNG plus a JSON spec of
what was actually drawn, read back from the matplotlib artists (panels,
series with their conditions, reference levels, interval bands, and the
tick labels' bounding boxes in pixels). The report embeds the spec beside
the image, so tests (and curious users) can check the picture's semantics
without reading pixels.

Rules the curves follow, from the rows' conditions only (no names known):

* every condition that varies within a panel, other than the x value and
  the run's own identity, splits a series (e.g. retrieval direction), so a
  line never joins points measured under different conditions;
* a group of rows measured at one x value only (the clean baseline,
  ``severity=0``) is not a panel: it is drawn as a dashed reference level in
  every panel, for the series it belongs to;
* rows with per-sample scores get a 95 % bootstrap band.

Every chart takes a ``colours`` mapping (run id -> colour) so that one run has
the same colour in every chart and in the leaderboard's legend dot. Figures
are drawn with the Agg backend (no display needed) and closed at once so a
report of many charts does not accumulate memory.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from typing import Any

import attrs
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from polymodal.leaderboard import Column, Leaderboard  # noqa: E402
from polymodal.results import ResultRow  # noqa: E402

#: A colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau).
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
                            "#000000", "#4E79A7", "#F28E2B", "#59A14F", "#B07AA1", "#76B7B2", "#EDC948")

#: Resolution of every chart; the page scales images by it so all charts share one scale.
DPI = 110

_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e8ec",
    "grid.linewidth": 0.8,
    "axes.edgecolor": "#9aa0a6",
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "legend.frameon": False,
    "figure.dpi": DPI,
}


@attrs.frozen
class Chart:
    """A rendered chart and the spec of what it shows (see the module docstring)."""

    png: bytes
    spec: dict[str, Any]


def _boxes(fig: Figure, labels: Sequence[Any]) -> list[list[float]]:
    renderer = fig.canvas.get_renderer()
    out = []
    for t in labels:
        if t.get_visible() and t.get_text():
            b = t.get_window_extent(renderer)
            out.append([round(b.x0, 1), round(b.y0, 1), round(b.x1, 1), round(b.y1, 1)])
    return out


def overlapping(boxes: Sequence[Sequence[float]], pad: float = 1.0) -> int:
    """How many pairs of boxes ``[x0, y0, x1, y1]`` overlap (with ``pad`` pixels of slack)."""
    n = 0
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a[0] < b[2] - pad and b[0] < a[2] - pad and a[1] < b[3] - pad and b[1] < a[3] - pad:
                n += 1
    return n


def _unclutter_xticks(fig: Figure, ax: Any) -> list[list[float]]:
    """Rotate an axis's x tick labels until no two overlap; return their final boxes."""
    fig.canvas.draw()
    boxes = _boxes(fig, ax.get_xticklabels())
    for angle in (30, 60, 90):
        if not overlapping(boxes):
            break
        for t in ax.get_xticklabels():
            t.set_rotation(angle)
            t.set_ha("right" if angle < 90 else "center")
            t.set_rotation_mode("anchor" if angle < 90 else "default")
        fig.canvas.draw()
        boxes = _boxes(fig, ax.get_xticklabels())
    return boxes


def run_colours(runs: Sequence[str]) -> dict[str, str]:
    return {run: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (3.6, 2.7)) -> tuple[Figure, list[Any]]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows + 0.6), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend(fig: Figure, runs: Sequence[str], colours: dict[str, str], marker: str = "o") -> None:
    handles = [plt.Line2D([], [], color=colours[r], marker=marker, linewidth=2, markersize=5) for r in runs]
    fig.legend(handles, list(runs), loc="lower center", ncol=min(4, len(runs)), bbox_to_anchor=(0.5, -0.01),
               fontsize=9)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * math.ceil(len(runs) / 4), 1, 1))


def overview_bars(board: Leaderboard, columns: Sequence[Column], colours: dict[str, str]) -> Chart | None:
    """Grouped bars: one group per axis metric in [0, 1], one bar per run that has it, with intervals."""
    runs = [r for r in board.runs if any(board.value(r, c.key) is not None for c in columns)]
    if not columns or not runs:
        return None
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(min(13.0, max(7.0, 1.1 * len(columns) + 2)), 3.9))
        width = 0.8 / len(runs)
        for i, run in enumerate(runs):
            xs, ys, lo, hi = [], [], [], []
            for j, col in enumerate(columns):
                v = board.value(run, col.key)
                if v is not None and math.isfinite(v):
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(v)
                    iv = board.interval(run, col.key)
                    lo.append(v - iv.low if iv else 0.0)
                    hi.append(iv.high - v if iv else 0.0)
            ax.bar(xs, ys, width=width * 0.92, color=colours[run], label=run)
            if any(lo) or any(hi):
                ax.errorbar(xs, ys, yerr=[lo, hi], fmt="none", ecolor="#333", elinewidth=0.8, capsize=1.5)
        ax.set_xticks(range(len(columns)))
        ax.set_xticklabels([_tick_label(c) for c in columns], fontsize=8.5)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("score")
        _legend(fig, runs, colours, marker="s")
        boxes = _unclutter_xticks(fig, ax)
        spec = {"kind": "bars", "panels": [{"title": "overview", "categories": [c.key for c in columns],
                                            "series": [{"label": r} for r in runs], "references": [],
                                            "xtick_boxes": boxes, "xtick_overlaps": overlapping(boxes)}]}
        return Chart(to_png(fig), spec)


def _tick_label(col: Column) -> str:
    """Two short lines (axis, metric) so that neighbouring labels never overlap."""
    axis = col.axis.replace("robustness.", "").replace("interpretability.", "")
    metric = textwrap.fill(col.metric.replace("_", " "), 14)
    return f"{axis}\n{metric} {'↑' if col.higher_is_better else '↓'}"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_IDENTITY_KEYS = frozenset({"model", "fusion", "dataset", "seed", "encoder", "encoders"})


def _series_keys(rows: Sequence[ResultRow], x_key: str, panel_keys: Sequence[str]) -> list[str]:
    """Condition keys that vary between rows of one run: each value set is its own series."""
    per_run: dict[str, dict[str, set[str]]] = {}
    for r in rows:
        for k, v in r.conditions.items():
            if k != x_key and k not in panel_keys and k not in _IDENTITY_KEYS:
                per_run.setdefault(r.run, {}).setdefault(k, set()).add(repr(v))
    keys = {k for seen in per_run.values() for k, vals in seen.items() if len(vals) > 1}
    return sorted(keys)


def _band(row_group: Sequence[ResultRow]) -> tuple[float, float] | None:
    """95 % bootstrap interval of one point from its row's per-sample scores (None without them)."""
    from polymodal.stats import PER_SAMPLE_KEY, bootstrap_interval, decode_per_sample

    rec = row_group[0].extra.get(PER_SAMPLE_KEY) if len(row_group) == 1 else None
    if not isinstance(rec, dict):
        return None
    try:
        iv = bootstrap_interval(decode_per_sample(rec), resamples=1000, seed=0)
    except Exception:
        return None
    return (iv.low, iv.high) if iv else None


_DASHES = ("-", "--", ":", "-.")


def curves(rows: Sequence[ResultRow], x_key: str, panel_keys: Sequence[str], colours: dict[str, str],
           x_label: str, title: str) -> Chart | None:
    """Small multiples of metric-vs-``x_key``, one panel per combination of ``panel_keys``.

    One line per run and series condition (see the module docstring), the
    clean baseline as a reference level in each panel, bootstrap bands.
    """
    series_keys = _series_keys(rows, x_key, panel_keys)
    points: dict[tuple[str, ...], dict[tuple[str, tuple[str, ...]], dict[float, list[ResultRow]]]] = {}
    for r in rows:
        x = _num(r.conditions.get(x_key))
        if x is None or r.value is None or not math.isfinite(r.value):
            continue
        panel = tuple(str(r.conditions.get(k, "")) for k in panel_keys if r.conditions.get(k) is not None)
        series = tuple(f"{k}={r.conditions[k]}" for k in series_keys if k in r.conditions)
        points.setdefault(panel, {}).setdefault((r.run, series), {}).setdefault(x, []).append(r)
    if not points:
        return None
    xs_of = {panel: {x for s in per.values() for x in s} for panel, per in points.items()}
    curve_panels = sorted(p for p in points if len(xs_of[p]) > 1)
    ref_panels = [p for p in points if len(xs_of[p]) == 1] if curve_panels else []
    panels = curve_panels or sorted(points)
    references: dict[tuple[str, tuple[str, ...]], float] = {}
    for p in ref_panels:
        for key, by_x in points[p].items():
            vals = [r.value for group in by_x.values() for r in group]
            references[key] = math.fsum(vals) / len(vals)
    runs = [r for r in colours if any(key[0] == r for p in points for key in points[p])]
    all_series = sorted({key[1] for p in points for key in points[p]})
    dash = {s: _DASHES[i % len(_DASHES)] for i, s in enumerate(all_series)}
    fig, axes = _grid(len(panels), ncols=4 if len(panels) > 6 else 3)
    spec_panels = []
    for ax, panel in zip(axes, panels, strict=True):
        spec_series, spec_refs = [], []
        for (run, series), by_x in sorted(points[panel].items(), key=lambda kv: (runs.index(kv[0][0]), kv[0][1])):
            xs = sorted(by_x)
            ys = [math.fsum(r.value for r in by_x[x]) / len(by_x[x]) for x in xs]
            label = " · ".join([run, *series])
            ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.8, color=colours[run], linestyle=dash[series],
                    label=label)
            bands = [_band(by_x[x]) for x in xs]
            if all(b is not None for b in bands):
                ax.fill_between(xs, [b[0] for b in bands], [b[1] for b in bands], color=colours[run], alpha=0.12,
                                linewidth=0)
            spec_series.append({"label": label, "run": run, "conditions": list(series),
                                "points": [[x, y] for x, y in zip(xs, ys, strict=True)],
                                "band": all(b is not None for b in bands)})
            if (run, series) in references:
                level = references[(run, series)]
                ax.axhline(level, color=colours[run], linestyle=(0, (4, 3)), linewidth=1.0, alpha=0.7)
                spec_refs.append({"label": label, "value": level})
        integral = all(float(x).is_integer() for key in points[panel] for x in points[panel][key])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=integral))
        ax.set_title(" · ".join(panel) or title)
        ax.set_xlabel(x_label)
        spec_panels.append({"title": " · ".join(panel) or title, "series": spec_series, "references": spec_refs})
    fig.suptitle(title + (" (thin dashed level: clean value)" if references else ""), fontsize=11.5,
                 fontweight="bold", x=0.01, ha="left")
    if len(all_series) > 1:
        handles = [plt.Line2D([], [], color="#555", linestyle=dash[s], linewidth=1.6) for s in all_series]
        axes[0].legend(handles, [" · ".join(s) or "—" for s in all_series], fontsize=7.5, loc="best")
    _legend(fig, runs, colours)
    for ax, sp in zip(axes, spec_panels, strict=True):
        sp["xtick_boxes"] = _unclutter_xticks(fig, ax)
        sp["xtick_overlaps"] = overlapping(sp["xtick_boxes"])
    spec = {"kind": "curves", "title": title, "x": x_key, "panel_keys": list(panel_keys),
            "series_keys": series_keys, "panels": spec_panels,
            "baseline_panels": [" · ".join(p) for p in ref_panels]}
    return Chart(to_png(fig), spec)


def grouped_by_category(values: dict[str, dict[str, dict[str, float]]], colours: dict[str, str],
                        category_label: str) -> bytes | None:
    """Panels per method, groups per category (e.g. modality), a bar per run.

    ``values[method][run][category] = value``.
    """
    if not values:
        return None
    methods = sorted(values)
    fig, axes = _grid(len(methods), ncols=3, size=(4.2, 2.9))
    runs_seen: list[str] = []
    for ax, method in zip(axes, methods, strict=True):
        per_run = values[method]
        runs = [r for r in colours if r in per_run]
        runs_seen += [r for r in runs if r not in runs_seen]
        cats = sorted({c for run in runs for c in per_run[run]})
        width = 0.8 / max(1, len(runs))
        for i, run in enumerate(runs):
            xs = [j - 0.4 + width * (i + 0.5) for j, c in enumerate(cats) if c in per_run[run]]
            ys = [per_run[run][c] for c in cats if c in per_run[run]]
            ax.bar(xs, ys, width=width * 0.92, color=colours[run])
        ax.axhline(0, color="#9aa0a6", linewidth=0.8)
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats)
        ax.grid(axis="x", visible=False)
        ax.set_title(method)
        ax.set_xlabel(category_label)
    _legend(fig, runs_seen, colours, marker="s")
    return to_png(fig)
