"""Matplotlib charts for the HTML report, each returned as PNG bytes.

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


def overview_bars(board: Leaderboard, columns: Sequence[Column], colours: dict[str, str]) -> bytes | None:
    """Grouped bars: one group per axis metric in [0, 1], one bar per run that has it."""
    runs = [r for r in board.runs if any(board.value(r, c.key) is not None for c in columns)]
    if not columns or not runs:
        return None
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(min(13.0, max(7.0, 1.1 * len(columns) + 2)), 3.9))
        width = 0.8 / len(runs)
        for i, run in enumerate(runs):
            xs, ys = [], []
            for j, col in enumerate(columns):
                v = board.value(run, col.key)
                if v is not None and math.isfinite(v):
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(v)
            ax.bar(xs, ys, width=width * 0.92, color=colours[run], label=run)
        ax.set_xticks(range(len(columns)))
        ax.set_xticklabels([_tick_label(c) for c in columns], fontsize=8.5)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("score")
        _legend(fig, runs, colours, marker="s")
        return to_png(fig)


def _tick_label(col: Column) -> str:
    """Two short lines (axis, metric) so that neighbouring labels never overlap."""
    axis = col.axis.replace("robustness.", "").replace("interpretability.", "")
    metric = textwrap.fill(col.metric.replace("_", " "), 14)
    return f"{axis}\n{metric} {'↑' if col.higher_is_better else '↓'}"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def curves(rows: Sequence[ResultRow], x_key: str, panel_keys: Sequence[str], colours: dict[str, str],
           x_label: str, title: str) -> bytes | None:
    """Small multiples of metric-vs-``x_key``, one panel per combination of ``panel_keys``, a line per run."""
    points: dict[tuple[str, ...], dict[str, list[tuple[float, float]]]] = {}
    for r in rows:
        x = _num(r.conditions.get(x_key))
        if x is None or r.value is None or not math.isfinite(r.value):
            continue
        panel = tuple(str(r.conditions.get(k, "")) for k in panel_keys if r.conditions.get(k) is not None)
        points.setdefault(panel, {}).setdefault(r.run, []).append((x, r.value))
    if not points:
        return None
    panels = sorted(points)
    runs = [r for r in colours if any(r in points[p] for p in panels)]
    fig, axes = _grid(len(panels), ncols=4 if len(panels) > 6 else 3)
    for ax, panel in zip(axes, panels, strict=True):
        for run in runs:
            pts = sorted(points[panel].get(run, []))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3.5, linewidth=1.8,
                        color=colours[run])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_title(" · ".join(panel) or title)
        ax.set_xlabel(x_label)
    fig.suptitle(title, fontsize=11.5, fontweight="bold", x=0.01, ha="left")
    _legend(fig, runs, colours)
    return to_png(fig)


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
