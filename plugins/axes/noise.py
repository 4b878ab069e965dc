"""``robustness.noise``: performance under per-modality corruptions of rising severity.

For every input field the model reads, each corruption registered for the
field's raw format (its modality's ``raw_format`` trait; see
:mod:`.corruption`) plus ``missing`` is applied to the *raw* samples, at
each severity, before preprocessing; the model's headline metric
(:mod:`.performance`: accuracy, recall@1 both ways for an embedding model,
word accuracy ``1 - WER`` for a transcriber, or QA accuracy (VQA or
multiple choice) for a model that answers questions; text corruptions then
damage the question, e.g. typos) is measured per (modality, corruption, severity). Each
corruption's curve is then summarised (:mod:`.robustness_summary`), and the
summaries averaged per modality and over everything.

Rows: ``<metric>`` at ``corruption="none", severity=0`` (clean) and at each
``modality, corruption, severity``; ``auc_relative``, ``corruption_error``,
``relative_corruption_error`` and ``ce_ratio`` per ``modality, corruption``
(extra: the curve); ``mean_auc_relative`` and ``mce`` per modality and for
``modality="all"``. Raw samples are loaded once per batch and shared by all
conditions, so the cost is one preprocessing + forward pass per condition.

Units of work (:mod:`polymodal.evaluation`): the clean rows; each
``(modality, corruption)`` group with its severity rows and summaries; and the
means, which are computed from the committed summary rows of *every* group, so
a run resumed after a kill averages over all corruptions, not only those the
last process measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import attrs

from polymodal import structure
from polymodal.batch import Batch
from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext, EvalData, clean_batch, declared_direction
from polymodal.results import ResultRow
from polymodal.streaming import is_streamed, iter_samples
from polymodal_plugins.axes.corruption import (
    MISSING,
    SEVERITIES,
    Corruption,
    available,
    get_corruption,
    missing_drops,
    sample_rng,
)
from polymodal_plugins.axes.performance import check_headline, meter_factory
from polymodal_plugins.axes.robustness_summary import summarise
from polymodal_plugins.axes.samples import field_traits, with_raw_texts

AXIS = "robustness.noise"
SUMMARY_METRICS = ("auc_relative", "corruption_error", "relative_corruption_error", "ce_ratio")
#: The direction of each summary this axis computes itself (the leaderboard reads it from the rows).
HIGHER_IS_BETTER = {"auc_relative": True, "corruption_error": False, "relative_corruption_error": False,
                    "ce_ratio": False, "mean_auc_relative": True, "mce": False}


def _check_severities(_inst: Any, _attr: Any, value: list[int]) -> None:
    if not value or any(s not in SEVERITIES for s in value) or len(set(value)) != len(value):
        raise ConfigError(f"{AXIS}: severities: expected distinct integers in 1..5, got {value}")


@attrs.define
class NoiseParams:
    """The axis parameters from the suite's ``[axes."robustness.noise"]`` table."""

    #: Severity levels to evaluate (1 = mild .. 5 = severe).
    severities: list[int] = attrs.field(factory=lambda: list(SEVERITIES), validator=_check_severities)
    #: Fields to corrupt; default: every input field of the model.
    fields: list[str] | None = None
    #: Field name or modality kind -> corruption names; default: every corruption registered for the
    #: field's raw format (its modality's ``raw_format`` trait), plus missing.
    corruptions: dict[str, list[str]] = attrs.field(factory=dict)
    #: Also evaluate the ``missing`` corruption on fields without an explicit list.
    missing: bool = True
    batch_size: int = 64
    #: Split to evaluate; default: the suite's evaluation split.
    split: str | None = None
    #: Embedding models: the two fields to retrieve between; default: the first two embed fields.
    pair: list[str] | None = None
    #: Capability -> registered metric measured as the headline (``performance.HEADLINE`` fills the rest):
    #: ``headline = { transcribe = "cer" }``. Lower-is-better metrics count as ``1 - value``.
    headline: dict[str, str] | None = None


@attrs.frozen
class Cell:
    field: str
    corruption: str
    severity: int


class NoiseAxis:
    """The ``robustness.noise`` axis (see the module docstring)."""

    requires: frozenset[str] = frozenset()
    requires_any: frozenset[str] = frozenset({"classify", "embed", "transcribe", "answer"})
    #: Fixed figures: a suite cannot choose them (``metrics`` is refused at validation). Each compares one
    #: higher-is-better headline per model kind (``performance.meter_factory``) between conditions.
    metric_feeds: frozenset[str] = frozenset()

    def __init__(self, **params: Any):
        self.params = structure(NoiseParams, params, f"axes.{AXIS}")
        if self.params.batch_size < 1:
            raise ConfigError(f"axes.{AXIS}.batch_size: expected a positive integer, got {self.params.batch_size}")

    def validate(self, plugins: Any) -> None:
        """The ``headline`` metric names against the registry, before anything trains."""
        check_headline(plugins, self.params.headline, f"axes.{AXIS}")

    # -- planning -------------------------------------------------------------------------
    def plan(self, model: Any, data: EvalData, ctx: AxisContext) -> dict[str, list[str]]:
        """field -> corruption names, validated against the model, the data and the registry."""
        p = self.params
        fields = list(p.fields) if p.fields is not None else list(model.input_fields)
        kinds: dict[str, str] = {}
        for f in fields:
            info = ctx.model_ctx.fields.get(f)
            if f not in model.input_fields or info is None:
                raise ConfigError(f"axes.{AXIS}.fields: model reads no field {f!r} "
                                  f"(its fields: {', '.join(model.input_fields)})")
            kinds[f] = info.modality
        for key in p.corruptions:
            if key not in kinds and key not in kinds.values():
                raise ConfigError(f"axes.{AXIS}.corruptions: {key!r} is neither an evaluated field nor a modality "
                                  f"kind of one ({', '.join(sorted({*kinds, *kinds.values()}))})")
        out: dict[str, list[str]] = {}
        for f, kind in kinds.items():
            raw_format = field_traits(data, f).raw_format
            names = p.corruptions.get(f, p.corruptions.get(kind))
            if names is None:
                names = available(raw_format, ctx.plugins) + ([MISSING] if p.missing else [])
            for name in names:
                if name != MISSING:
                    get_corruption(raw_format, name, where=f"axes.{AXIS}.corruptions.{f}", plugins=ctx.plugins)
            out[f] = list(names)
        return out

    # -- running --------------------------------------------------------------------------
    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow]:
        import torch

        p = self.params
        split = p.split or ctx.split
        if split not in data.splits:
            raise ConfigError(f"axes.{AXIS}.split: no split {split!r} (have: {', '.join(data.splits)})")
        dataset = data.splits[split]
        plan = self.plan(model, data, ctx)
        kinds = {f: ctx.model_ctx.fields[f].modality for f in plan}
        damage = {(f, c): get_corruption(field_traits(data, f).raw_format, c, plugins=ctx.plugins)
                  for f, names in plan.items() for c in names if c != MISSING}
        make_meter = meter_factory(model, p.pair, ctx.plugins, p.headline)
        keys = make_meter().keys()
        groups = [(f, c) for f, names in plan.items() for c in names
                  if not ctx.unit_done("corruption", modality=f, corruption=c)]
        cells = [Cell(f, c, s) for f, c in groups for s in p.severities]
        clean_meter = make_meter()
        meters = {cell: make_meter() for cell in cells}

        n = ctx.limited(len(dataset))
        # Each rank a contiguous shard of whole batches, so every batch (and its padding) is the one a
        # single process forms and figures match it bit for bit; the meters synchronise (retrieval
        # gathers the embeddings).
        indices = list(ctx.shard(n, block=p.batch_size))
        chunks = [indices[i:i + p.batch_size] for i in range(0, len(indices), p.batch_size)]
        collate = data.collate
        modalities = getattr(collate, "modalities", {})
        root = getattr(collate, "root", None)
        measured = bool(cells) or not ctx.unit_done("clean")
        if not measured:
            chunks = []  # every measurement is committed; only the means may be left
        model.eval()
        stream = iter_samples(dataset, [i for chunk in chunks for i in chunk]) if is_streamed(dataset) else None
        for done, chunk in enumerate(chunks):
            read = None if stream is None else list(islice(stream, len(chunk)))
            samples, clean = clean_batch(data, split, chunk, dataset, samples=read)
            clean_meter.update(model, with_raw_texts(data, samples=samples, batch=clean.to(ctx.device)), samples)
            for f in {cell.field for cell in cells}:
                modality = modalities.get(f)
                raws = [None if s.get(f) is None else (modality.load(s[f], root) if modality else s[f])
                        for s in samples]
                for cell in (c for c in cells if c.field == f):
                    corrupted = [
                        {**s, f: self._corrupt(damage.get((f, cell.corruption)), cell, raw, s.get("id", i), ctx.seed)}
                        for i, (s, raw) in zip(chunk, zip(samples, raws, strict=True), strict=True)
                    ]
                    with torch.no_grad():
                        batch = with_raw_texts(data, samples=corrupted,
                                               batch=_recollate(collate, clean, f, corrupted).to(ctx.device))
                        meters[cell].update(model, batch, corrupted)
            ctx.progress(done + 1, len(chunks), f"{AXIS} {split}")

        clean = clean_meter.compute() if measured else {}
        if not ctx.unit_done("clean"):
            with ctx.unit("clean"):
                for (metric, direction), value in clean.items():
                    yield ctx.row(metric, value, corruption="none", severity=0, **_dir(direction),
                                  per_sample=clean_meter.samples.get((metric, direction)),
                                  higher_is_better=declared_direction(clean_meter))
        values = {cell: meters[cell].compute() for cell in cells}
        for f, c in groups:
            with ctx.unit("corruption", modality=f, corruption=c):
                for key in keys:
                    metric, direction = key
                    curve = [values[Cell(f, c, s)][key] for s in p.severities]
                    for s, v in zip(p.severities, curve, strict=True):
                        yield ctx.row(metric, v, modality=f, corruption=c, severity=s, **_dir(direction),
                                      per_sample=meters[Cell(f, c, s)].samples.get(key),
                                      higher_is_better=declared_direction(meters[Cell(f, c, s)]))
                    summary = summarise(clean[key], p.severities, curve)
                    extra = {"metric": metric, "severities": list(p.severities), "values": curve,
                             "clean": clean[key], "kind": kinds[f]}
                    for name in SUMMARY_METRICS:
                        yield ctx.row(name, getattr(summary, name), extra=extra, modality=f, corruption=c,
                                      **_dir(direction), higher_is_better=HIGHER_IS_BETTER[name])
        if not ctx.unit_done("means"):
            with ctx.unit("means"):
                yield from self._means(ctx, plan, keys)

    @staticmethod
    def _corrupt(corruption: Corruption | None, cell: Cell, raw: Any, sample_id: Any, seed: int) -> Any:
        if raw is None:
            return None
        rng = sample_rng(seed, sample_id, cell.field, cell.corruption)
        if cell.corruption == MISSING:
            return None if missing_drops(cell.severity, rng) else raw
        assert corruption is not None  # planned: every name but ``missing`` was looked up
        return corruption(raw, cell.severity, rng)

    @staticmethod
    def _means(ctx: AxisContext, plan: dict[str, list[str]],
               keys: list[tuple[str, str | None]]) -> Iterator[ResultRow]:
        """Per-modality and overall means of every group's committed summaries (not this process's)."""

        def stored(name: str, f: str, c: str, direction: str | None) -> float | None:
            found = ctx.stored_rows(name, modality=f, corruption=c, **_dir(direction))
            if not found:
                raise RuntimeError(f"{AXIS}: no committed {name} row for {f}/{c}; its unit should precede the means")
            return found[0].value

        summaries: dict[tuple[str, str | None, str], list[tuple[str, float | None, float | None]]] = {}
        for f, names in plan.items():
            for metric, direction in keys:
                summaries[(f, direction, metric)] = [
                    (c, stored("auc_relative", f, c, direction), stored("corruption_error", f, c, direction))
                    for c in names]
        pooled: dict[tuple[str, str | None, str], list[tuple[str, float | None, float | None]]] = {}
        for (f, direction, metric), items in summaries.items():
            pooled.setdefault(("all", direction, metric), []).extend((f"{f}/{c}", a, e) for c, a, e in items)
        for (f, direction, metric), items in {**summaries, **pooled}.items():
            if not items:
                continue
            aucs = [a for _c, a, _e in items if a is not None]
            errors = [e for _c, _a, e in items]
            extra = {"metric": metric, "corruptions": [c for c, _a, _e in items]}
            yield ctx.row("mean_auc_relative", sum(aucs) / len(aucs) if aucs else None, extra=extra,
                          modality=f, corruption="all", **_dir(direction),
                          higher_is_better=HIGHER_IS_BETTER["mean_auc_relative"])
            yield ctx.row("mce", None if None in errors else sum(errors) / len(errors),  # type: ignore[arg-type]
                          extra=extra, modality=f, corruption="all", **_dir(direction),
                          higher_is_better=HIGHER_IS_BETTER["mce"])


def _recollate(collate: Any, clean: Batch, field: str, corrupted: list[dict[str, Any]]) -> Batch:
    """The batch of ``corrupted`` samples, which differ from the clean ones in ``field`` only.

    The platform's collate function (``Collator``, which offers ``field``) collates fields independently, so only
    the corrupted field is preprocessed again and the others are the clean
    batch's (the same values ``collate(corrupted)`` would give, without
    decoding and preprocessing them once per corruption and severity).
    """
    one_field = getattr(collate, "field", None)
    if callable(one_field) and field in getattr(collate, "modalities", {}):
        return attrs.evolve(clean, inputs={**clean.inputs, field: one_field(field, corrupted)})
    return collate(corrupted)


def _dir(direction: str | None) -> dict[str, str]:
    return {} if direction is None else {"direction": direction}
