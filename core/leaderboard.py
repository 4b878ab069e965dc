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

Every cell whose rows carry per-sample scores (``extra["per_sample"]``, see
:mod:`polymodal.stats`) also gets a seeded 95 % bootstrap interval; rows
averaged into one cell are averaged per sample first, so the interval is of
the number shown. The best value is marked only when a paired sign-flip test
on the shared samples says it beats every other run (p < ``alpha``); runs the
leader cannot be told apart from are marked *tied* instead. Without
per-sample scores no significance is claimed and no best is marked. When a
suite runs several seeds, runs that differ only in ``seed=`` form a group
with the per-seed mean, standard deviation, count and t-interval.

Explanations (``interpretability.*``) and training curves (``train``) are
not scores and stay out of the leaderboard; reporters show them as charts.
Whether higher is better comes only from a row's ``extra.higher_is_better``,
which the axis records from the metric that produced the row (torchmetrics'
``higher_is_better``) or states for a figure it computes itself. Rows
written before that fact existed (old result folders) lack it: their
column's direction is then the one the metric registry declares -- the
registered metric of that name (its class's ``higher_is_better``), or a
registered metric whose class declares the figure in ``figure_directions``
-- and the column says so (``direction_source = "registry"``). A column
with no fact from either has direction "unknown": no arrow and no best or
tied marking. The direction is never guessed from the metric's name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from polymodal.results import ResultRow
from polymodal.stats import (DEFAULT_RESAMPLES, PER_SAMPLE_KEY, Interval, SeedSummary, bootstrap_interval,
                             decode_per_sample, paired_test, seed_summary)

if TYPE_CHECKING:
    from polymodal.plugins import Plugins

#: Significance level for marking a best value.
DEFAULT_ALPHA = 0.05


#: Axes that explain a model or record training rather than score it.
EXCLUDED_AXIS_PREFIXES: tuple[str, ...] = ("interpretability", "train")

#: Condition keys that identify a run rather than vary within it.
RUN_KEYS = frozenset({"model", "fusion", "dataset", "seed", "encoder", "encoders"})


def column_direction(facts: Iterable[Any]) -> bool | None:
    """A column's direction from its rows' ``extra.higher_is_better`` facts; None (unknown) without one.

    Rows that disagree leave the direction unknown rather than pick one.
    """
    declared = {f for f in facts if isinstance(f, bool)}
    return declared.pop() if len(declared) == 1 else None


def registered_direction(plugins: Plugins, metric: str) -> bool | None:
    """The direction the metric registry declares for a figure named ``metric``; None when none does.

    For rows that predate ``extra.higher_is_better``: first the registered metric called ``metric``
    (its class's ``higher_is_better``, or its ``figure_directions`` entry for that name), then any
    registered metric whose class declares ``metric`` in a class-level ``figure_directions`` mapping
    (they must all agree). Loading a metric imports its module (torch), so this runs only for
    columns without a fact. A metric that fails to load declares nothing.
    """
    from polymodal.errors import PolymodalError
    from polymodal.evaluation import declared_direction

    def load(spec: Any) -> Any:
        try:
            return spec.load()
        except Exception:  # noqa: BLE001 - a broken metric plugin declares nothing; the column stays unknown
            return None

    try:
        own = load(plugins.get("metrics", metric))
    except PolymodalError:
        own = None
    if own is not None:
        found = declared_direction(own, metric)
        if found is not None:
            return found
    declared = set()
    for spec in plugins.list("metrics"):
        per_figure = getattr(load(spec), "figure_directions", None)
        if isinstance(per_figure, Mapping) and isinstance(per_figure.get(metric), bool):
            declared.add(per_figure[metric])
    return declared.pop() if len(declared) == 1 else None


def axis_order(axes: Iterable[str]) -> dict[str, int]:
    """Each axis's position: the order the suite ran them in (first appearance in the results).

    No axis is privileged by a built-in list; a suite author orders the report by ordering its axes.
    """
    order: dict[str, int] = {}
    for axis in axes:
        order.setdefault(axis, len(order))
    return order


@attrs.frozen
class Column:
    """One leaderboard column: an axis and metric, with how its cells were aggregated."""

    axis: str
    metric: str
    #: Declared by the rows' producer; None: unknown (no arrow, no best marked).
    higher_is_better: bool | None
    #: Condition keys whose values were averaged over (e.g. ``("epsilon", "attack")``).
    averaged_over: tuple[str, ...] = ()
    #: Where the direction came from: ``rows`` (their ``extra.higher_is_better``), ``registry`` (rows
    #: without the fact, e.g. an old results folder: the metric registry's declaration), None: unknown.
    direction_source: str | None = None

    @property
    def key(self) -> str:
        return f"{self.axis}/{self.metric}"

    @property
    def arrow(self) -> str:
        """``↑`` / ``↓`` for a declared direction, empty when unknown."""
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]

    @property
    def note(self) -> str:
        """A one-line explanation of the cell values, for tooltips and footnotes."""
        arrow = {True: "higher is better", False: "lower is better", None: "direction unknown"}[
            self.higher_is_better]
        if self.averaged_over:
            return f"{arrow}; mean over {', '.join(self.averaged_over)}"
        return arrow

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "axis": self.axis, "metric": self.metric,
                "higher_is_better": self.higher_is_better, "averaged_over": list(self.averaged_over),
                "direction_source": self.direction_source}


@attrs.frozen
class Cell:
    value: float | None
    #: How many measurements were averaged into ``value``.
    count: int = 0
    #: The seeded bootstrap interval of ``value`` (None without per-sample scores).
    interval: Interval | None = None
    #: Per-sample scores behind ``value`` (averaged over the cell's rows), for paired tests.
    samples: Any = attrs.field(default=None, eq=False, repr=False)
    #: Digest of the sample ids behind ``samples``: only equal digests are paired.
    sample_ids: str | None = None


@attrs.frozen
class Leaderboard:
    """Runs x columns of headline values; ``best[key]`` holds the winning run ids."""

    runs: tuple[str, ...]
    columns: tuple[Column, ...]
    cells: dict[tuple[str, str], Cell]
    best: dict[str, frozenset[str]]
    #: Runs the leader of a column cannot be told apart from (leader included), per column.
    tied: dict[str, frozenset[str]] = attrs.field(factory=dict)
    #: Why a column has (or lacks) a best mark, in one line.
    best_notes: dict[str, str] = attrs.field(factory=dict)
    #: Seed groups: group label -> (run ids, {column key: SeedSummary}).
    seed_groups: dict[str, tuple[tuple[str, ...], dict[str, SeedSummary]]] = attrs.field(factory=dict)

    def value(self, run: str, key: str) -> float | None:
        cell = self.cells.get((run, key))
        return cell.value if cell else None

    def is_best(self, run: str, key: str) -> bool:
        return run in self.best.get(key, frozenset())

    def is_tied(self, run: str, key: str) -> bool:
        return run in self.tied.get(key, frozenset())

    def interval(self, run: str, key: str) -> Interval | None:
        cell = self.cells.get((run, key))
        return cell.interval if cell else None

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
                    "intervals": {c.key: _json_interval(self.interval(run, c.key)) for c in self.columns},
                    "best": [c.key for c in self.columns if self.is_best(run, c.key)],
                    "tied": [c.key for c in self.columns if self.is_tied(run, c.key)],
                }
                for run in self.runs
            ],
            "best_notes": dict(self.best_notes),
            "seed_groups": [
                {"group": label, "runs": list(members),
                 "summaries": {key: summary.to_json() for key, summary in summaries.items()}}
                for label, (members, summaries) in self.seed_groups.items()
            ],
        }


def _json_interval(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else {k: _json_number(v) if isinstance(v, float) else v
                                          for k, v in interval.to_json().items()}


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


def _cell_samples(group: list[ResultRow]) -> tuple[Any, str | None]:
    """Per-sample scores of a cell: the rows' vectors averaged sample by sample.

    Only when every row of the cell carries scores for the same samples;
    otherwise (None, None), and the cell gets no interval.
    """
    records = [r.extra.get(PER_SAMPLE_KEY) for r in group if r.value is not None]
    if not records or not all(isinstance(rec, dict) for rec in records):
        return None, None
    digests = {rec.get("ids") for rec in records}
    if len(digests) != 1:
        return None, None
    try:
        vectors = [decode_per_sample(rec) for rec in records]
    except Exception:  # a malformed record costs the interval, never the report
        return None, None
    if len({v.size for v in vectors}) != 1 or vectors[0].size == 0:
        return None, None
    import numpy as np

    return np.mean(np.stack(vectors), axis=0), digests.pop()


def seed_group(run: str) -> str | None:
    """The run id without its ``seed=N`` part, or None when it has none."""
    parts = run.split("/")
    kept = [p for p in parts if not p.startswith("seed=")]
    return "/".join(kept) if len(kept) != len(parts) else None


def build_leaderboard(rows: Iterable[ResultRow], runs: Sequence[str] | None = None, *,
                      resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                      alpha: float = DEFAULT_ALPHA, plugins: Plugins | None = None) -> Leaderboard:
    """Aggregate result rows into a leaderboard (see the module docstring for the rule).

    ``runs`` fixes the row order and includes runs without any measurement
    (failed ones); by default runs appear in the order they first wrote a row.
    ``resamples`` and ``seed`` drive every bootstrap interval and permutation
    test, so the same results always give the same leaderboard. ``plugins``
    (default: the process-wide manager) answers the direction of a column
    whose rows lack ``extra.higher_is_better`` (:func:`registered_direction`).
    """
    rows = [r for r in rows if r.metric != "error" and not _is_excluded(r.axis)]
    run_order = list(dict.fromkeys([*(runs or []), *(r.run for r in rows)]))
    groups: dict[tuple[str, str, str], list[ResultRow]] = {}
    column_order: dict[tuple[str, str], int] = {}
    for r in rows:
        groups.setdefault((r.run, r.axis, r.metric), []).append(r)
        column_order.setdefault((r.axis, r.metric), len(column_order))
    axes_first = axis_order(r.axis for r in rows)

    cells: dict[tuple[str, str], Cell] = {}
    varying: dict[tuple[str, str], set[str]] = {}
    hints: dict[tuple[str, str], list[Any]] = {}
    for (run, axis, metric), group in groups.items():
        group = _final_epoch_only(group)
        values = [r.value for r in group if r.value is not None]
        keys = {k for r in group for k in r.conditions if k not in RUN_KEYS | {"epoch", "step"}}
        varying.setdefault((axis, metric), set()).update(
            k for k in keys if len({repr(r.conditions.get(k)) for r in group}) > 1
        )
        for r in group:
            hints.setdefault((axis, metric), []).append(r.extra.get("higher_is_better"))
        mean = math.fsum(values) / len(values) if values else None
        samples, ids = _cell_samples(group) if mean is not None and math.isfinite(mean) else (None, None)
        interval = bootstrap_interval(samples, resamples=resamples, seed=seed) if samples is not None else None
        cells[(run, f"{axis}/{metric}")] = Cell(mean, len(values), interval, samples, ids)

    def direction(axis: str, metric: str) -> tuple[bool | None, str | None]:
        facts = hints.get((axis, metric), ())
        if any(isinstance(f, bool) for f in facts):
            found = column_direction(facts)
            return found, "rows" if found is not None else None  # rows that disagree: unknown
        nonlocal plugins
        if plugins is None:
            from polymodal.plugins import get_plugins

            plugins = get_plugins()
        found = registered_direction(plugins, metric)
        return found, "registry" if found is not None else None

    cols: list[Column] = []
    for axis, metric in sorted(column_order, key=lambda am: (axes_first[am[0]], column_order[am])):
        hib, source = direction(axis, metric)
        cols.append(Column(axis=axis, metric=metric, higher_is_better=hib, direction_source=source,
                              averaged_over=tuple(sorted(varying.get((axis, metric), ())))))
    columns = tuple(cols)
    best: dict[str, frozenset[str]] = {}
    tied: dict[str, frozenset[str]] = {}
    notes: dict[str, str] = {}
    for col in columns:
        best[col.key], tied[col.key], notes[col.key] = _mark_best(
            col, [(run, cells[(run, col.key)]) for run in run_order if (run, col.key) in cells],
            resamples=resamples, seed=seed, alpha=alpha)
    groups_out = _seed_groups(run_order, columns, cells)
    return Leaderboard(runs=tuple(run_order), columns=columns, cells=cells, best=best, tied=tied,
                       best_notes=notes, seed_groups=groups_out)


def _mark_best(col: Column, scored: list[tuple[str, Cell]], *, resamples: int, seed: int,
               alpha: float) -> tuple[frozenset[str], frozenset[str], str]:
    """(best, tied, note) of one column: a best only when it beats every other run significantly."""
    finite = [(run, c) for run, c in scored if c.value is not None and math.isfinite(c.value)]
    if len(finite) < 2:
        return frozenset(), frozenset(), "a single run: nothing to compare"
    if col.higher_is_better is None:
        return frozenset(), frozenset(), ("direction unknown (neither its rows nor a registered metric declare "
                                          "higher_is_better): no best marked")
    sign = 1.0 if col.higher_is_better else -1.0
    leader_run, leader = max(finite, key=lambda rc: sign * rc[1].value)
    if leader.samples is None:
        return frozenset(), frozenset(), "no per-sample scores: no significance test, no best marked"
    tied_runs = {leader_run}
    worst_p = 0.0
    for run, cell in finite:
        if run == leader_run:
            continue
        if cell.samples is None or cell.sample_ids != leader.sample_ids:
            return frozenset(), frozenset(), f"{run} scored other samples than {leader_run}: no paired test"
        result = paired_test(leader.samples, cell.samples, resamples=resamples, seed=seed)
        worst_p = max(worst_p, result.p_value)
        if result.p_value >= alpha or sign * result.difference <= 0:
            tied_runs.add(run)
    if len(tied_runs) == 1:
        return frozenset({leader_run}), frozenset(), f"best: paired test p <= {worst_p:.3g} against every other run"
    return frozenset(), frozenset(tied_runs), (f"tied: {len(tied_runs)} runs not significantly different "
                                               f"(paired test, alpha = {alpha:g})")


def _seed_groups(run_order: list[str], columns: tuple[Column, ...],
                 cells: dict[tuple[str, str], Cell]) -> dict[str, tuple[tuple[str, ...], dict[str, SeedSummary]]]:
    """Runs that differ only in their seed, with per-column summaries over seeds (groups of 2+)."""
    members: dict[str, list[str]] = {}
    for run in run_order:
        label = seed_group(run)
        if label is not None:
            members.setdefault(label, []).append(run)
    out: dict[str, tuple[tuple[str, ...], dict[str, SeedSummary]]] = {}
    for label, group_runs in members.items():
        if len(group_runs) < 2:
            continue
        summaries = {}
        for col in columns:
            values = [cells[(r, col.key)].value for r in group_runs if (r, col.key) in cells]
            values = [v for v in values if v is not None and math.isfinite(v)]
            if values:
                summaries[col.key] = seed_summary(values)
        out[label] = (tuple(group_runs), summaries)
    return out


def format_interval(interval: Interval | None, digits: int = 3) -> str:
    """An interval as ``[low, high]`` in the cell's number format, or an empty string."""
    if interval is None:
        return ""
    return f"[{format_value(interval.low, digits)}, {format_value(interval.high, digits)}]"


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


@attrs.frozen
class Ablation:
    """Runs that differ in one swept setting only (e.g. ``fusion``), compared pairwise on shared samples."""

    #: The run id with the swept setting blanked, e.g. ``classifier/fusion=*/seed=0``.
    label: str
    #: The setting that varies, e.g. ``fusion``.
    key: str
    runs: tuple[str, ...]
    #: Per column: the leader and each other run's paired comparison against it (Holm-adjusted).
    comparisons: dict[str, list[dict[str, Any]]]

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "key": self.key, "runs": list(self.runs), "comparisons": self.comparisons}


def ablations(board: Leaderboard, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> list[Ablation]:
    """Paired tests of every run against the column's leader, within each one-setting sweep.

    Run ids are ``label/key=value/.../seed=N`` (how suites name swept runs);
    runs whose ids differ in exactly one ``key=value`` part form an ablation.
    Per column, each run is compared with the leader on the samples both
    scored (paired sign-flip test, paired bootstrap interval); the p-values
    of one ablation's comparisons are Holm-corrected together.
    """
    from polymodal.stats import holm

    groups: dict[tuple[str, str], list[str]] = {}
    for run in board.runs:
        parts = run.split("/")
        for i, part in enumerate(parts):
            key, eq, _value = part.partition("=")
            if eq and key != "seed":
                blanked = "/".join(parts[:i] + [f"{key}=*"] + parts[i + 1:])
                groups.setdefault((blanked, key), []).append(run)
    out = []
    for (label, key), runs in groups.items():
        if len(runs) < 2:
            continue
        comparisons: dict[str, list[dict[str, Any]]] = {}
        flat: list[dict[str, Any]] = []
        for col in board.columns:
            cells = [(r, board.cells[(r, col.key)]) for r in runs if (r, col.key) in board.cells]
            cells = [(r, c) for r, c in cells if c.samples is not None and c.value is not None]
            if len(cells) < 2 or len({c.sample_ids for _, c in cells}) != 1 or col.higher_is_better is None:
                continue
            sign = 1.0 if col.higher_is_better else -1.0
            leader, lead = max(cells, key=lambda rc: sign * rc[1].value)
            entries = []
            for run, cell in cells:
                if run == leader:
                    continue
                result = paired_test(cell.samples, lead.samples, resamples=resamples, seed=seed)
                entries.append({"run": run, "leader": leader, "difference": result.difference,
                                "interval": result.interval.to_json() if result.interval else None,
                                "p_value": result.p_value})
            comparisons[col.key] = entries
            flat += entries
        for entry, p_adj in zip(flat, holm([e["p_value"] for e in flat]), strict=True):
            entry["p_adjusted"] = p_adj
        if comparisons:
            out.append(Ablation(label, key, tuple(runs), comparisons))
    return out
