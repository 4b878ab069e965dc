"""The evaluation-axis contract: what an axis receives and how it reports.

An axis plugin (hook ``register_axes``) registers a factory called with the
axis parameters from the suite (``factory(**params)``). The object returned
provides:

``requires: frozenset[str]``
    model capabilities the axis needs (``classify``, ``embed``, ``caption``,
    ``generate``); the runner checks every run of a suite against them before
    anything trains. An axis that adapts to what the model can do may instead
    set ``requires_any``.
``run(model, data, ctx) -> Iterable[ResultRow]``
    evaluates ``model`` (a :class:`polymodal.model_api.PolymodalModel` in eval
    mode) on ``data`` and yields rows made with :meth:`AxisContext.row`.

``data`` is an :class:`EvalData`: datasets per split and the collate function
(with modalities configured for the model's encoders), so an axis can load
clean batches, or corrupt raw samples *before* preprocessing. Ask for clean
batches with :func:`clean_batch` (``samples, batch = clean_batch(data, split,
indices)``): every axis of a run then shares one preprocessed, collated copy
of each batch instead of reading and preprocessing the split again
(:mod:`polymodal.clean_batches`; bounded by ``POLYMODAL_EVAL_CACHE_MB``).

``ctx`` is an :class:`AxisContext`: the run's conditions (model, fusion,
dataset, seed ...), the device, the plugin manager (to build metrics and
attacks), a writer for artifacts (heatmaps, examples) that reporters show,
progress reporting, and resume support.

Units of work (how an axis writes)
    An axis groups its rows into *units* -- a corruption group, an attack
    setting, an importance block -- so that a kill or a full disk never
    leaves half a unit behind::

        for group in groups:
            if ctx.unit_done("group", corruption=group):
                continue                  # committed by an earlier process
            with ctx.unit("group", corruption=group):
                ctx.artifact(...)         # buffered with the unit
                yield ctx.row(...)        # buffered with the unit

    Rows yielded and artifacts recorded inside ``with ctx.unit(...)`` are
    held back and committed together when the block closes: the rows, then
    the artifacts, then a commit record that resume recognises. A unit
    killed half-way is not committed; ``--resume`` cuts its rows off and
    runs it again. An exception inside the block discards the unit.
    Summaries over units (``corruption="all"``) are computed from
    :meth:`AxisContext.stored_rows`, which holds every committed row of this
    run and axis -- the ones of earlier processes too -- so a resumed run
    gives the same summary as an uninterrupted one. Rows and artifacts made
    outside any unit belong to one implicit unit per axis, committed when the
    axis ends (an axis that never opens a unit is atomic as a whole).
    ``ctx.is_done(metric, **conditions)`` still answers whether one row is
    stored; the runner drops duplicate rows in any case.

Under ``torchrun`` the context carries ``rank``/``world_size``;
:meth:`AxisContext.shard` gives each rank a contiguous part of a split (after
``--limit``), metrics synchronise through torchmetrics states, and
:meth:`AxisContext.all_reduce_sum` / :meth:`AxisContext.all_reduce_max` /
:meth:`AxisContext.all_gather_object` cover plain counts and corpus-level
scores, so axes stay the same code and give the single-process figures.
These reductions are collective: call them after the loop over the shard,
on every rank, whatever the shard held (an empty shard still calls them).

Each of them (and every torchmetrics sync during a run) first checks that
all ranks are at the same call; a rank on another path makes every rank
raise :class:`polymodal.collective.CollectiveMismatch` naming each rank's
position, and a wait longer than ``POLYMODAL_COLLECTIVE_TIMEOUT`` seconds
raises :class:`polymodal.collective.CollectiveTimeout`: the run is recorded
as failed instead of hanging. Work that one rank does alone goes inside
``with ctx.local():`` (its metric syncs and reductions stay local); a raw
``torch.distributed`` call of a plugin's own goes after ``ctx.guard(site)``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from polymodal.clean_batches import clean_batch as clean_batch  # part of the axis contract (see module docs)
# The cross-rank helpers an axis needs under torchrun, re-exported so that axes need only this
# module and polymodal.results (the component API, docs/public-api.md).
from polymodal.collective import (
    active,
    all_gather_object,
    all_reduce_max,
    all_reduce_sum,
    broadcast_object,
    gather_cat,
    local,
)
from polymodal.errors import ConfigError, PolymodalError
from polymodal.results import ResultRow

if TYPE_CHECKING:
    import torch

    from polymodal.batch import Batch
    from polymodal.model_api import ModelContext
    from polymodal.plugins import Plugins


class EvalData(Protocol):
    """What an axis gets as ``data`` (the training plugin's ``TrainingData`` is one)."""

    splits: dict[str, Any]
    collate: Callable[[list[Any]], Batch]

    def eval_batches(self, split: str | None) -> Iterable[Batch] | None: ...


def condition_key(axis: str, metric: str, conditions: Mapping[str, Any]) -> str:
    """A canonical identity of a measurement, used to de-duplicate on resume."""
    return json.dumps([axis, metric, dict(sorted(conditions.items()))], sort_keys=True, default=str)


def unit_key(axis: str, unit_id: str, conditions: Mapping[str, Any]) -> str:
    """A canonical identity of a unit of work, stored in its commit record."""
    return json.dumps(["unit", axis, unit_id, dict(sorted(conditions.items()))], sort_keys=True, default=str)


@attrs.define
class Unit:
    """The rows and artifacts of one open unit of work, held until it commits."""

    key: str | None
    label: str
    rows: list[ResultRow] = attrs.field(factory=list)
    artifacts: list[dict[str, Any]] = attrs.field(factory=list)
    _ids: set[int] = attrs.field(factory=set)

    def add(self, row: ResultRow) -> None:
        if id(row) not in self._ids:
            self._ids.add(id(row))
            self.rows.append(row)


#: ``commit(unit)``: the runner stores the unit's rows, artifacts and commit record.
Committer = Callable[[Unit], None]


def declared_direction(metric: Any, figure: str | None = None) -> bool | None:
    """The ``higher_is_better`` a metric (torchmetrics contract) declares; None when it declares none.

    A metric computing several figures with different senses declares ``higher_is_better = None`` and
    may declare ``figure_directions``, a mapping from each key of its ``compute()`` dict to its sense;
    ``figure`` names that key. Without either fact the answer is None (the axis states the figure's
    direction itself, or the leaderboard shows it as unknown): never a guess from the name.
    """
    value = getattr(metric, "higher_is_better", None)
    if isinstance(value, bool):
        return value
    per_figure = getattr(metric, "figure_directions", None)
    if figure is not None and isinstance(per_figure, Mapping):
        found = per_figure.get(figure)
        return found if isinstance(found, bool) else None
    return None


def headline_figures(metric: Any) -> tuple[str, ...] | None:
    """The ``compute()`` keys a metric declares as its headline (``headline_figures``); None: undeclared.

    A metric computing a dict of figures names the one(s) an axis compares as its headline (the
    ``retrieval`` metric: recall@1 both ways), never found by a name guess. A property on the class is
    read once the metric is built (its figures may depend on its parameters), so on a class it is None.
    """
    declared = getattr(metric, "headline_figures", None)
    if declared is None or isinstance(declared, property):
        return None
    if isinstance(declared, str) or not all(isinstance(f, str) for f in declared):
        raise ConfigError(f"metric {type(metric).__name__}: headline_figures must be a sequence of "
                          f"compute() keys, got {declared!r}")
    return tuple(declared)


def metric_feeds(axis: Any) -> frozenset[str] | None:
    """The metric capabilities an axis (class or object) feeds by name when a suite sets ``metrics``.

    An axis declares ``metric_feeds: ClassVar[frozenset[str]]``: a metric whose spec declares one of
    these ``capabilities`` can be chosen in ``[axes.<label>] metrics = [...]``, and the axis builds it
    through the registry (so a metric another plugin ``replaces`` is the one used). Empty: the axis's
    figures are fixed, and a suite that sets ``metrics`` on it is refused at validation. None (not
    declared): the axis's own parameter check decides what a ``metrics`` key means (API 1 axes).
    """
    feeds = getattr(axis, "metric_feeds", None)
    return None if feeds is None else frozenset(feeds)


def check_metric_choice(plugins: Plugins, axis: str, names: Any, feeds: frozenset[str]) -> None:
    """Refuse a suite's ``metrics = [...]`` for axis ``axis`` unless each name is a metric it feeds.

    Called by the runner when a suite is validated, before anything trains; ``feeds`` is
    :func:`metric_feeds` of the axis. Unknown names raise the registry's did-you-mean error.
    """
    if not feeds:
        raise ConfigError(f"key 'metrics': axis {axis!r} computes fixed figures (it declares no metric_feeds), "
                          "so a suite cannot choose them; remove the key")
    names = [names] if isinstance(names, str) else names  # ``metrics = "accuracy"``: one name
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(m, str) for m in names):
        raise ConfigError(f"metrics: expected a non-empty list of metric names, got {names!r}")
    for name in names:
        spec = plugins.get("metrics", name)  # unknown: UnknownNameError with a did-you-mean
        if not set(spec.capabilities) & feeds:
            raise ConfigError(f"metrics: metric {name!r} declares none of the capabilities the {axis} axis "
                              f"feeds by name ({', '.join(sorted(feeds))}); its spec says "
                              f"{sorted(spec.capabilities) or 'none'}")


@attrs.define
class AxisContext:
    """Everything about the current run that an axis may use (see module docs)."""

    run: str
    axis: str
    conditions: dict[str, Any]
    device: torch.device
    plugins: Plugins
    model_ctx: ModelContext
    out_dir: Path
    seed: int = 0
    #: Evaluate at most this many samples per split (``--limit``); None: all.
    limit: int | None = None
    #: The split axes evaluate on by default (the suite's eval split).
    split: str = "test"
    rank: int = 0
    world_size: int = 1
    done: frozenset[str] = frozenset()
    progress: Callable[[int, int | None, str], None] = attrs.field(default=lambda done, total, what: None)
    #: Keys (:func:`unit_key`) of the units already committed for this run and axis.
    committed_units: set[str] = attrs.field(factory=set)
    #: Every committed row of this run and axis, earlier processes' included (see :meth:`stored_rows`).
    committed_rows: list[ResultRow] = attrs.field(factory=list)
    #: Stores a closed unit; without one (a bare context in tests) units are only recorded in memory.
    commit: Committer | None = None
    #: Artifacts of committed units, kept only when there is no ``commit`` (see :meth:`take_artifacts`).
    committed_artifacts: list[dict[str, Any]] = attrs.field(factory=list)
    #: What was evaluated, as a digest of the run's data settings (dataset, its parameters, splits,
    #: limit). Per-sample ids are scoped by it, so the leaderboard never pairs position i of one
    #: dataset with position i of another (two runs on different data share positions, not samples).
    data_scope: str | None = None
    _implicit: Unit = attrs.field(factory=lambda: Unit(None, ""))
    _open: Unit | None = None

    def row(self, metric: str, value: float | None, extra: Mapping[str, Any] | None = None, *,
            per_sample: Sequence[float] | None = None, sample_ids: Sequence[Any] | None = None,
            higher_is_better: bool | None = None, **conditions: Any) -> ResultRow:
        """A result row of this axis with the run's conditions plus ``conditions``.

        ``higher_is_better``: the direction of ``metric``, recorded as
        ``extra["higher_is_better"]`` for the leaderboard, which never guesses
        it from the name. Pass the fact of the metric that produced the value
        (``declared_direction(ctx.plugins.build("metrics", name))``), or state
        it for a figure the axis computes itself (``mce``: False). Without it
        the column's direction is shown as unknown.

        The row belongs to the open unit (or the axis's implicit one) from here on.

        ``per_sample``: when ``value`` is a mean over samples (accuracy,
        recall@K, attack success), the score of every sample, in split
        order (``ctx.gather_cat`` joins the ranks' shards), with their
        ``sample_ids``. They are stored compactly in ``extra["per_sample"]``
        and give the leaderboard its bootstrap interval and paired tests.
        Their mean must equal ``value``: the interval is of the number shown.
        """
        extra = dict(extra or {})
        if higher_is_better is not None:
            if not isinstance(higher_is_better, bool):
                raise PolymodalError(f"axis {self.axis!r}, metric {metric!r}: higher_is_better must be True, False "
                                     f"or None, got {higher_is_better!r}")
            extra["higher_is_better"] = higher_is_better
        if per_sample is not None and value is not None:
            from polymodal.stats import PER_SAMPLE_KEY, encode_per_sample, per_sample_mean_matches

            scores = [float(v) for v in per_sample]
            mean = math.fsum(scores) / len(scores) if scores else math.nan
            if not per_sample_mean_matches(scores, value):
                raise PolymodalError(f"axis {self.axis!r}, metric {metric!r}: per-sample scores average to {mean!r}, "
                                     f"not the row value {float(value)!r}")
            if self.data_scope is not None:
                ids = range(len(scores)) if sample_ids is None else sample_ids
                sample_ids = [f"{self.data_scope}:{i}" for i in ids]
            extra[PER_SAMPLE_KEY] = encode_per_sample(scores, sample_ids)
        row = ResultRow(axis=self.axis, metric=metric, value=None if value is None else float(value), run=self.run,
                        conditions={**self.conditions, **conditions}, extra=extra)
        (self._open or self._implicit).add(row)
        return row

    def is_done(self, metric: str, **conditions: Any) -> bool:
        """Whether a row for ``metric`` under ``conditions`` is already stored (resume)."""
        return condition_key(self.axis, metric, {**self.conditions, **conditions}) in self.done

    # -- units of work (see the module docs) ----------------------------------------------------
    def unit_done(self, unit_id: str, **conditions: Any) -> bool:
        """Whether the unit ``unit_id`` under ``conditions`` was committed (by this or an earlier process)."""
        return unit_key(self.axis, unit_id, {**self.conditions, **conditions}) in self.committed_units

    @contextlib.contextmanager
    def unit(self, unit_id: str, **conditions: Any) -> Iterator[None]:
        """Buffer the rows and artifacts made inside the block; commit them together when it closes."""
        if self._open is not None:
            raise RuntimeError(f"axis {self.axis!r}: unit {unit_id!r} opened inside unit {self._open.label!r}; "
                               "units do not nest")
        unit = Unit(unit_key(self.axis, unit_id, {**self.conditions, **conditions}), unit_id)
        self._open = unit
        try:
            yield
        finally:
            self._open = None
        # Only a block that ran to its end commits: an exception (or a generator closed early) leaves
        # the unit uncommitted, so resume runs it again.
        self._commit(unit)

    def accept(self, row: ResultRow) -> None:
        """Take a row the axis yielded into the open unit (the runner calls this for every row).

        Rows made with :meth:`row` are in their unit already; this adds rows built otherwise.
        """
        (self._open or self._implicit).add(row)

    def finish(self) -> None:
        """Commit the implicit unit: rows and artifacts made outside any ``unit`` block (runner, at axis end)."""
        unit, self._implicit = self._implicit, Unit(None, "")
        self._commit(unit)

    def _commit(self, unit: Unit) -> None:
        if self.commit is not None:
            self.commit(unit)
        else:
            self.committed_artifacts.extend(unit.artifacts)
        if unit.key is not None:
            self.committed_units.add(unit.key)
        self.committed_rows.extend(unit.rows)

    def take_artifacts(self) -> list[dict[str, Any]]:
        """Artifacts recorded so far, committed or in the implicit unit (for tests of an axis alone)."""
        out = self.committed_artifacts + self._implicit.artifacts
        self.committed_artifacts, self._implicit.artifacts = [], []
        return out

    def stored_rows(self, metric: str | None = None, **conditions: Any) -> list[ResultRow]:
        """Committed rows of this run and axis whose metric and conditions match, in commit order.

        The run's conditions plus ``conditions`` need only be a subset of a
        row's conditions. Summaries over units read these instead of what this
        process happened to compute, so a resumed run summarises the units
        earlier processes committed too.
        """
        wanted = {**self.conditions, **conditions}
        return [r for r in self.committed_rows
                if (metric is None or r.metric == metric)
                and all(k in r.conditions and r.conditions[k] == v for k, v in wanted.items())]

    def artifact(self, kind: str, data: Mapping[str, Any], *, image: Any = None, name: str | None = None) -> str | None:
        """Record an artifact for reporters; ``image`` (HxWx3 uint8 array or PIL image) is saved as PNG.

        Returns the PNG's path relative to the results folder (or None).
        Only rank 0 writes. The record is committed with the open unit (or the
        axis's implicit one); the PNG is written at once, atomically, under a
        name fixed by the unit and its position in it, so a unit run again
        after a crash writes the same file.
        """
        if self.rank != 0:
            return None
        unit = self._open or self._implicit
        rel = None
        if image is not None:
            import io

            import numpy as np
            from PIL import Image

            from polymodal.results import atomic_write_bytes

            folder = self.out_dir / "artifacts"
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{self.run}-{self.axis}-{name or kind}" if unit.key is None else \
                f"{self.run}-{self.axis}-{unit.label}-{_short_hash(unit.key)}-{name or kind}"
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
            index = len(unit.artifacts)
            rel = f"artifacts/{safe}-{index}.png"
            img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            atomic_write_bytes(self.out_dir / rel, buf.getvalue())
        record = {"run": self.run, "axis": self.axis, "kind": kind, "data": dict(data)}
        if rel:
            record["path"] = rel
        unit.artifacts.append(record)
        return rel

    def shard(self, n: int, block: int = 1) -> range:
        """The indices ``0..n`` this rank evaluates: contiguous, none dropped or repeated.

        ``block`` > 1 cuts only between whole blocks of that many samples (the
        last may be short), for axes whose batches must be the same as in one
        process -- e.g. when a batch's random start is seeded by its first index.
        """
        blocks = -(-n // block) if block > 1 else n
        per, extra = divmod(blocks, self.world_size)
        start = self.rank * per + min(self.rank, extra)
        stop = start + per + (1 if self.rank < extra else 0)
        return range(min(n, start * block), min(n, stop * block))

    # -- cross-rank reductions (no-ops in one process; see polymodal.collective) ---------------
    def all_reduce_sum(self, values: Any) -> Any:
        """Sum of plain counts over ranks: a number, list, dict of numbers or a tensor."""
        from polymodal.collective import all_reduce_sum

        return all_reduce_sum(values, self.device) if self.world_size > 1 else values

    def all_reduce_max(self, values: Any) -> Any:
        """Maximum over ranks, in the shapes :meth:`all_reduce_sum` takes."""
        from polymodal.collective import all_reduce_max

        return all_reduce_max(values, self.device) if self.world_size > 1 else values

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order (``[obj]`` in one process)."""
        from polymodal.collective import all_gather_object

        return all_gather_object(obj) if self.world_size > 1 else [obj]

    def guard(self, site: str, **facts: Any) -> list[dict[str, Any]]:
        """Check that every rank is at this call before a ``torch.distributed`` call of your own.

        Returns each rank's ``facts`` (small JSON values such as sizes), so a
        padded gather needs no second exchange. Raises
        :class:`polymodal.collective.CollectiveMismatch` when a rank is elsewhere.
        """
        from polymodal.collective import guard

        return guard(f"{site}", **facts) if self.world_size > 1 else [facts]

    def local(self) -> contextlib.AbstractContextManager[None]:
        """``with ctx.local():`` work this rank does alone (rank 0's figures): no collectives, no metric syncs."""
        from polymodal.collective import local

        return local()

    def gather_cat(self, items: list[Any]) -> list[Any]:
        """Per-sample ``items`` of this rank's shard joined in split order across ranks."""
        return [x for part in self.all_gather_object(items) for x in part]

    def limited(self, n: int) -> int:
        return n if self.limit is None else min(n, self.limit)


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


class Axis(Protocol):
    """What an axis factory returns."""

    requires: frozenset[str]

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow] | Iterable[ResultRow]: ...
