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
clean batches, or corrupt raw samples *before* preprocessing.

``ctx`` is an :class:`AxisContext`: the run's conditions (model, fusion,
dataset, seed ...), the device, the plugin manager (to build metrics and
attacks), a writer for artifacts (heatmaps, examples) that reporters show,
progress reporting, and resume support: ``ctx.is_done(**conditions)`` tells
an axis that rows for a condition are already stored, so it may skip that
work; the runner drops duplicate rows in any case.

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

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
    _artifacts: list[dict[str, Any]] = attrs.field(factory=list, alias="artifacts")

    def row(self, metric: str, value: float | None, extra: Mapping[str, Any] | None = None,
            **conditions: Any) -> ResultRow:
        """A result row of this axis with the run's conditions plus ``conditions``."""
        return ResultRow(axis=self.axis, metric=metric, value=None if value is None else float(value), run=self.run,
                         conditions={**self.conditions, **conditions}, extra=dict(extra or {}))

    def is_done(self, metric: str, **conditions: Any) -> bool:
        """Whether a row for ``metric`` under ``conditions`` is already stored (resume)."""
        return condition_key(self.axis, metric, {**self.conditions, **conditions}) in self.done

    def artifact(self, kind: str, data: Mapping[str, Any], *, image: Any = None, name: str | None = None) -> str | None:
        """Record an artifact for reporters; ``image`` (HxWx3 uint8 array or PIL image) is saved as PNG.

        Returns the PNG's path relative to the results folder (or None).
        Only rank 0 writes; artifacts are flushed by the runner with the
        axis's rows.
        """
        if self.rank != 0:
            return None
        rel = None
        if image is not None:
            import numpy as np
            from PIL import Image

            folder = self.out_dir / "artifacts"
            folder.mkdir(parents=True, exist_ok=True)
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{self.run}-{self.axis}-{name or kind}")
            index = len(self._artifacts)
            rel = f"artifacts/{safe}-{index}.png"
            img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
            img.save(self.out_dir / rel)
        record = {"run": self.run, "axis": self.axis, "kind": kind, "data": dict(data)}
        if rel:
            record["path"] = rel
        self._artifacts.append(record)
        return rel

    def take_artifacts(self) -> list[dict[str, Any]]:
        out, self._artifacts = self._artifacts, []
        return out

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


class Axis(Protocol):
    """What an axis factory returns."""

    requires: frozenset[str]

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow] | Iterable[ResultRow]: ...
