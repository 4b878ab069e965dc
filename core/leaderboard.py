"""The leaderboard: one headline number per run and (axis, metric), best marked.

Result rows are measurements under conditions (severity, epsilon, direction,
corruption, epoch ...). A leaderboard needs one number per cell, so each cell
aggregates its rows with a fixed, documented rule that every reporter (and
``polymodal compare``) shares, so the three reports never disagree:

1. rows with an ``epoch`` or ``step`` condition keep only the last one
   (the final model, not the training history);
2. the remaining rows are averaged (e.g. robust accuracy averaged over the
   epsilons and attacks, Recall@1 over both retrieval directions); the column
   says over which conditions, so the mean is never mistaken for a single
   measurement.

Explanations (``interpretability.*``) and training curves (``train``) are
not scores and stay out of the leaderboard; reporters show them as charts.
Whether higher is better comes from a row's ``extra.higher_is_better`` when
the producer set it, otherwise from the metric name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from polymodal.results import ResultRow

#: Axes shown first, in this order; any other axis follows alphabetically.
AXIS_ORDER: tuple[str, ...] = ("task", "zero-shot", "retrieval", "robustness.noise", "robustness.adversarial")

#: Axes that explain a model or record training rather than score it.
EXCLUDED_AXIS_PREFIXES: tuple[str, ...] = ("interpretability", "train")

#: Condition keys that identify a run rather than vary within it.
RUN_KEYS = frozenset({"model", "fusion", "dataset", "seed", "encoder", "encoders"})

_LOWER_IS_BETTER_WORDS = ("loss", "error", "fid", "kid", "attack_success", "success_rate", "ece",
                          "perplexity", "wer", "cer", "seconds", "time", "latency", "gap", "rank", "distance")


def higher_is_better(metric: str, hint: Any = None) -> bool:
    """Direction of a metric: an explicit producer hint wins, then the name."""
    if isinstance(hint, bool):
        return hint
    name = metric.lower()
    if name.startswith(("recall", "accuracy", "robust_accuracy", "f1", "bleu", "cider", "rouge", "auc")):
        return True
    return not any(word in name for word in _LOWER_IS_BETTER_WORDS)


def axis_sort_key(axis: str) -> tuple[int, str]:
    return (AXIS_ORDER.index(axis), "") if axis in AXIS_ORDER else (len(AXIS_ORDER), axis)


@attrs.frozen
class Column:
    """One leaderboard column: an axis and metric, with how its cells were aggregated."""

    axis: str
    metric: str
    higher_is_better: bool
    #: Condition keys whose values were averaged over (e.g. ``("epsilon", "attack")``).
    averaged_over: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.axis}/{self.metric}"

    @property
    def note(self) -> str:
        """A one-line explanation of the cell values, for tooltips and footnotes."""
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        if self.averaged_over:
            return f"{arrow}; mean over {', '.join(self.averaged_over)}"
        return arrow

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "axis": self.axis, "metric": self.metric,
                "higher_is_better": self.higher_is_better, "averaged_over": list(self.averaged_over)}


@attrs.frozen
class Cell:
    value: float | None
    #: How many measurements were averaged into ``value``.
    count: int = 0


@attrs.frozen
class Leaderboard:
    """Runs x columns of headline values; ``best[key]`` holds the winning run ids."""

    runs: tuple[str, ...]
    columns: tuple[Column, ...]
    cells: dict[tuple[str, str], Cell]
    best: dict[str, frozenset[str]]

    def value(self, run: str, key: str) -> float | None:
        cell = self.cells.get((run, key))
        return cell.value if cell else None

    def is_best(self, run: str, key: str) -> bool:
        return run in self.best.get(key, frozenset())

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": [c.to_json() for c in self.columns],
            "rows": [
                {
                    "run": run,
                    "values": {c.key: _json_number(self.value(run, c.key)) for c in self.columns},
                    "counts": {c.key: self.cells[(run, c.key)].count for c in self.columns if (run, c.key) in self.cells},
                    "best": [c.key for c in self.columns if self.is_best(run, c.key)],
                }
                for run in self.runs
            ],
        }


def _json_number(value: float | None) -> float | str | None:
    if value is not None and not math.isfinite(value):
        return str(value)
    return value


def _is_excluded(axis: str) -> bool:
    return any(axis == p or axis.startswith(p + ".") for p in EXCLUDED_AXIS_PREFIXES)


def _final_epoch_only(rows: list[ResultRow]) -> list[ResultRow]:
    for key in ("epoch", "step"):
        stamped = [r for r in rows if isinstance(r.conditions.get(key), (int, float))]
        if stamped:
            last = max(r.conditions[key] for r in stamped)
            rows = [r for r in rows if r.conditions.get(key, last) == last]
    return rows


def build_leaderboard(rows: Iterable[ResultRow], runs: Sequence[str] | None = None) -> Leaderboard:
    """Aggregate result rows into a leaderboard (see the module docstring for the rule).

    ``runs`` fixes the row order and includes runs without any measurement
    (failed ones); by default runs appear in the order they first wrote a row.
    """
    rows = [r for r in rows if r.metric != "error" and not _is_excluded(r.axis)]
    run_order = list(dict.fromkeys([*(runs or []), *(r.run for r in rows)]))
    groups: dict[tuple[str, str, str], list[ResultRow]] = {}
    column_order: dict[tuple[str, str], int] = {}
    for r in rows:
        groups.setdefault((r.run, r.axis, r.metric), []).append(r)
        column_order.setdefault((r.axis, r.metric), len(column_order))

    cells: dict[tuple[str, str], Cell] = {}
    varying: dict[tuple[str, str], set[str]] = {}
    hints: dict[tuple[str, str], Any] = {}
    for (run, axis, metric), group in groups.items():
        group = _final_epoch_only(group)
        values = [r.value for r in group if r.value is not None]
        keys = {k for r in group for k in r.conditions if k not in RUN_KEYS | {"epoch", "step"}}
        varying.setdefault((axis, metric), set()).update(
            k for k in keys if len({repr(r.conditions.get(k)) for r in group}) > 1
        )
        for r in group:
            if "higher_is_better" in r.extra:
                hints[(axis, metric)] = r.extra["higher_is_better"]
        mean = math.fsum(values) / len(values) if values else None
        cells[(run, f"{axis}/{metric}")] = Cell(mean, len(values))

    columns = tuple(
        Column(axis=axis, metric=metric, higher_is_better=higher_is_better(metric, hints.get((axis, metric))),
               averaged_over=tuple(sorted(varying.get((axis, metric), ()))))
        for axis, metric in sorted(column_order, key=lambda am: (axis_sort_key(am[0]), column_order[am]))
    )
    best: dict[str, frozenset[str]] = {}
    for col in columns:
        scored = [(run, cells[(run, col.key)].value) for run in run_order if (run, col.key) in cells]
        finite = [(run, v) for run, v in scored if v is not None and math.isfinite(v)]
        if len(finite) < 2:
            best[col.key] = frozenset()  # a best of one is no comparison
            continue
        target = max(v for _, v in finite) if col.higher_is_better else min(v for _, v in finite)
        best[col.key] = frozenset(run for run, v in finite if math.isclose(v, target, rel_tol=1e-12, abs_tol=1e-12))
    return Leaderboard(runs=tuple(run_order), columns=columns, cells=cells, best=best)


def format_value(value: float | None, digits: int = 3) -> str:
    """A cell as text: fixed digits, large numbers compact, missing as an em dash."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"
