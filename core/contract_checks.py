"""Contract checkers: one call runs a component through everything its kind promises.

Modelled on scikit-learn's ``check_estimator``: a plugin author (and every
built-in) calls ``check_fusion(MyFusion)`` in a test, and the checker builds
the component on small synthetic inputs and asserts the contract -- shapes,
masks, a missing modality, determinism, distributed-safe metric states, and
well-formed rows for axes. A violation raises :class:`ContractError` whose
message names the component, the check, and what was expected, so the test
output says what to fix. Re-exported by :mod:`polymodal.testing`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from polymodal.errors import PolymodalError


class ContractError(PolymodalError, AssertionError):
    """A component breaks its kind's contract (an ``AssertionError``, so pytest shows it as a failure)."""


def _require(ok: object, who: str, check: str, expected: str) -> None:
    if not ok:
        raise ContractError(f"{who}: {check}: {expected}")


def _name(factory: Any) -> str:
    return getattr(factory, "__qualname__", None) or type(factory).__name__


def _features(dims: Mapping[str, int], batch: int, tokens: int, seed: int) -> dict[str, Any]:
    import torch

    from polymodal.batch import Features

    g = torch.Generator().manual_seed(seed)
    out = {}
    for i, (m, d) in enumerate(sorted(dims.items())):
        mask = torch.ones(batch, tokens, dtype=torch.bool)
        mask[0, tokens - 1 - i % tokens:] = False  # ragged lengths: padding the fusion must ignore
        out[m] = Features(torch.randn(batch, tokens, d, generator=g), mask)
    return out


def check_fusion(factory: Callable[..., Any], input_dims: Mapping[str, int] | None = None, **params: Any) -> Any:
    """Check a fusion factory (``factory(input_dims, **params)``); returns the built module.

    Checks: an ``nn.Module`` with an int ``output_dim``; ``forward`` returns a
    finite ``[B, output_dim]`` tensor that gradients flow through; padding
    positions and a missing modality (all-false mask row, or absent from the
    dict) never leak into the output (filled with NaN, the output stays finite
    and unchanged); the same input gives the same output in eval mode;
    ``interpretation()`` returns a dict of tensors.
    """
    import torch
    from torch import nn

    from polymodal.batch import Features

    who = f"fusion {_name(factory)}"
    dims = dict(input_dims or {"first": 12, "second": 8})  # any field names: a fusion must not care
    fusion = factory(dict(dims), **params)
    _require(isinstance(fusion, nn.Module), who, "type", "the factory must return a torch.nn.Module")
    out_dim = getattr(fusion, "output_dim", None)
    _require(isinstance(out_dim, int) and not isinstance(out_dim, bool) and out_dim > 0, who, "output_dim",
             f"a positive int attribute, got {out_dim!r}")
    fusion.eval()
    feats = _features(dims, batch=4, tokens=5, seed=0)
    with torch.no_grad():
        y = fusion(feats)
    _require(isinstance(y, torch.Tensor) and tuple(y.shape) == (4, out_dim), who, "forward",
             f"a tensor [4, {out_dim}] for a batch of 4, got {getattr(y, 'shape', type(y).__name__)}")
    _require(bool(torch.isfinite(y).all()), who, "forward", "finite outputs on finite inputs")
    with torch.no_grad():
        again = fusion(feats)
    _require(torch.equal(y, again), who, "determinism", "the same input twice in eval mode gives the same output")

    # Padding and a missing modality must not reach the output, whatever they hold.
    first = sorted(dims)[0]
    poisoned = {m: Features(f.tokens.clone(), f.mask.clone()) for m, f in feats.items()}
    for f in poisoned.values():
        f.tokens[~f.mask] = float("nan")
    poisoned[first].mask[1] = False
    poisoned[first].tokens[1] = float("nan")
    clean = {m: Features(f.tokens.clone(), f.mask.clone()) for m, f in poisoned.items()}
    for f in clean.values():
        f.tokens[~f.mask] = 0.0
    with torch.no_grad():
        y_poison, y_clean = fusion(poisoned), fusion(clean)
    _require(bool(torch.isfinite(y_poison).all()), who, "missing modality",
             f"finite outputs when {first!r} is missing for sample 1 and padding holds NaN (mask it before use)")
    _require(torch.allclose(y_poison, y_clean, atol=1e-6), who, "masking",
             "values at masked positions must not change the output")
    rest = {m: f for m, f in feats.items() if m != first}
    if rest:
        with torch.no_grad():
            y_absent = fusion(rest)
        _require(tuple(y_absent.shape) == (4, out_dim) and bool(torch.isfinite(y_absent).all()), who,
                 "absent modality", f"a modality left out of the dict ({first!r}) is missing for every sample")

    fusion.train()
    grad_feats = {m: Features(f.tokens.clone().requires_grad_(True), f.mask) for m, f in feats.items()}
    out = fusion(grad_feats)
    # A random projection, not a plain sum: a final LayerNorm makes the sum constant.
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    _require(any(f.tokens.grad is not None and bool(f.tokens.grad.abs().sum() > 0) for f in grad_feats.values()),
             who, "gradients", "the output must depend differentiably on the input features")
    fusion.eval()
    interp = fusion.interpretation() if hasattr(fusion, "interpretation") else None
    _require(isinstance(interp, dict) and all(isinstance(v, torch.Tensor) for v in interp.values()), who,
             "interpretation()", "a method returning dict[str, Tensor] (may be empty)")
    return fusion


def check_encoder(factory: Callable[..., Any], batch: Any, **params: Any) -> Any:
    """Check an encoder factory on a :class:`~polymodal.batch.ModalityBatch`; returns the module.

    Checks: an ``nn.Module`` with an int ``output_dim``; ``forward(batch)``
    returns :class:`~polymodal.batch.Features` with tokens ``[B, T,
    output_dim]`` and a boolean mask ``[B, T]``; finite; deterministic in eval
    mode; a sample whose modality is missing (all-false mask row) has an
    all-false feature mask row.
    """
    import torch
    from torch import nn

    from polymodal.batch import Features, ModalityBatch

    who = f"encoder {_name(factory)}"
    enc = factory(**params)
    _require(isinstance(enc, nn.Module), who, "type", "the factory must return a torch.nn.Module")
    dim = getattr(enc, "output_dim", None)
    _require(isinstance(dim, int) and not isinstance(dim, bool) and dim > 0, who, "output_dim",
             f"a positive int attribute, got {dim!r}")
    enc.eval()
    with torch.no_grad():
        f = enc(batch)
    _require(isinstance(f, Features), who, "forward", f"polymodal.batch.Features, got {type(f).__name__}")
    b = len(batch)
    _require(f.tokens.dim() == 3 and f.tokens.shape[0] == b and f.tokens.shape[2] == dim, who, "tokens",
             f"[{b}, T, {dim}], got {tuple(f.tokens.shape)}")
    _require(f.mask.dtype == torch.bool and tuple(f.mask.shape) == tuple(f.tokens.shape[:2]), who, "mask",
             f"a bool [B, T] mask matching the tokens, got {f.mask.dtype} {tuple(f.mask.shape)}")
    _require(bool(torch.isfinite(f.tokens[f.mask]).all()), who, "forward", "finite features at valid positions")
    with torch.no_grad():
        again = enc(batch)
    _require(torch.equal(f.tokens, again.tokens), who, "determinism", "same input, same features in eval mode")
    missing = ModalityBatch(batch.data.clone(), batch.mask.clone(), dict(batch.meta))
    missing.mask[0] = False
    with torch.no_grad():
        fm = enc(missing)
    _require(not bool(fm.mask[0].any()), who, "missing modality",
             "a sample whose input mask row is all false gets an all-false feature mask row")
    return enc


def check_modality(modality: Any, raw_values: Sequence[Any]) -> Any:
    """Check a modality object on already loaded raw values; returns the collated batch.

    Checks: declared ``traits`` (:class:`polymodal.traits.ModalityTraits`);
    ``preprocess`` gives a tensor per value; ``collate`` of the
    tensors plus a ``None`` (a missing value) gives a
    :class:`~polymodal.batch.ModalityBatch` with one row per value, a boolean
    mask of shape ``[B]`` or ``[B, T]``, and an all-false row for the missing one;
    an optional ``preprocess_batch`` gives exactly that batch, or declines (None).
    """
    import torch

    from polymodal.batch import ModalityBatch

    who = f"modality {getattr(modality, 'name', _name(type(modality)))}"
    _require(isinstance(getattr(modality, "name", None), str), who, "name", "a str attribute `name`")
    from polymodal.traits import ModalityTraits

    _require(isinstance(getattr(modality, "traits", None), ModalityTraits), who, "traits",
             "a `traits` attribute holding polymodal.traits.ModalityTraits (what axes read instead of the name)")
    _require(len(raw_values) >= 2, who, "inputs", "give at least two raw values")
    tensors = [modality.preprocess(v) for v in raw_values]
    _require(all(isinstance(t, torch.Tensor) for t in tensors), who, "preprocess", "a torch.Tensor per raw value")
    mb = modality.collate([*tensors, None])
    _require(isinstance(mb, ModalityBatch), who, "collate", f"a ModalityBatch, got {type(mb).__name__}")
    n = len(tensors) + 1
    _require(mb.data.shape[0] == n and mb.mask.shape[0] == n, who, "collate", f"{n} rows in data and mask")
    _require(mb.mask.dtype == torch.bool and mb.mask.dim() in (1, 2), who, "mask", "bool, [B] or [B, T]")
    _require(not bool(mb.present[-1]) and bool(mb.present[:-1].all()), who, "missing value",
             "None collates to an all-false mask row; present values to rows with a true mask")
    again = modality.collate([modality.preprocess(v) for v in raw_values] + [None])
    _require(torch.equal(again.data, mb.data) and torch.equal(again.mask, mb.mask), who, "determinism",
             "preprocessing and collating the same values twice gives the same batch")
    batched = getattr(modality, "preprocess_batch", None)
    if callable(batched):
        out = batched([*raw_values, None])
        _require(out is None or (isinstance(out, ModalityBatch) and out.data.shape == mb.data.shape
                                 and torch.equal(out.data, mb.data) and torch.equal(out.mask, mb.mask)),
                 who, "preprocess_batch", "exactly collate([preprocess(v) ...]) of the same values (or None to "
                 "leave them to the per-sample path)")
    return mb


def check_metric(factory: Callable[..., Any], updates: Sequence[tuple[Any, ...]], **params: Any) -> Any:
    """Check a metric factory against a list of ``update`` argument tuples; returns ``compute()``.

    Checks: a ``torchmetrics.Metric`` declaring ``higher_is_better`` (None
    only when ``compute()`` returns a dict of figures with different senses);
    ``headline_figures``, where declared, naming keys of that dict whose
    direction is declared; every
    value it accumulates lives in a state registered with ``add_state`` (else
    it is not synchronised across processes: a distributed run would report
    one rank's value); the updates split over two instances and merged as
    torch.distributed would give the single-instance result; ``reset()``
    returns to the initial result.
    """
    import torch
    import torchmetrics

    who = f"metric {_name(factory)}"
    metric = factory(**params)
    _require(isinstance(metric, torchmetrics.Metric), who, "type", "the factory must return a torchmetrics.Metric")
    hib = getattr(metric, "higher_is_better", None)
    _require(len(updates) >= 2, who, "inputs", "give at least two update() argument tuples")
    _require(bool(metric._defaults), who, "states", "accumulate in states registered with add_state()")
    plain = {k: copy.deepcopy(v) for k, v in vars(metric).items() if not k.startswith("_") and k not in
             metric._defaults and isinstance(v, (list, dict, int, float, torch.Tensor)) and not isinstance(v, bool)}
    for args in updates:
        metric.update(*args)
    changed = sorted(k for k, v in plain.items() if not _same(v, getattr(metric, k, None)))
    _require(not changed, who, "distributed-safe states",
             f"update() changed plain attributes {changed}; register them with add_state() so they synchronise "
             "across processes")
    whole = metric.compute()
    _require(isinstance(hib, bool) or (hib is None and isinstance(whole, Mapping)), who, "higher_is_better",
             "a class attribute True or False, so reports and leaderboards know the better direction "
             "(None only for a metric computing a dict of figures with different senses)")
    figures = getattr(metric, "headline_figures", None)
    if figures is not None:
        from polymodal.evaluation import declared_direction

        _require(isinstance(whole, Mapping) and not isinstance(figures, str) and bool(figures)
                 and all(f in whole and isinstance(declared_direction(metric, f), bool) for f in figures),
                 who, "headline_figures", f"keys of compute()'s dict, each with a declared direction "
                 f"(higher_is_better or figure_directions); got {figures!r}")
    half = len(updates) // 2
    a, b = factory(**params), factory(**params)
    for args in updates[:half]:
        a.update(*args)
    for args in updates[half:]:
        b.update(*args)
    _sync_two(a, b)
    _require(_close(a.compute(), whole), who, "distributed merge",
             "updates split over two processes and merged must compute the single-process value "
             "(use dist_reduce_fx 'sum'/'cat'; do not average per-batch results)")
    metric.reset()
    fresh = factory(**params)
    for args in updates:
        metric.update(*args)
        fresh.update(*args)
    _require(_close(metric.compute(), fresh.compute()), who, "reset()", "after reset() the metric starts over")
    return whole


def _sync_two(a: Any, b: Any) -> None:
    """Give ``a`` the states torchmetrics' ``sync`` would give two ranks holding ``a`` and ``b``.

    As torchmetrics does: list states are concatenated per rank, every state
    is gathered across ranks, then reduced with the state's ``dist_reduce_fx``.
    """
    import torch
    from torchmetrics.utilities.data import dim_zero_cat

    for attr, fx in a._reductions.items():
        x, y = getattr(a, attr), getattr(b, attr)
        if isinstance(x, list):
            parts = [dim_zero_cat(v) for v in (x, y) if len(v)]
            if not parts:
                continue
            gathered: Any = parts
        else:
            gathered = torch.stack([x, y])
        setattr(a, attr, fx(gathered) if fx is not None else gathered)


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    return a == b


def _close(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    ta, tb = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return ta.shape == tb.shape and torch.allclose(ta, tb, atol=1e-6, rtol=1e-6, equal_nan=True)


def check_axis_rows(rows: Iterable[Any], axis: str, *, metrics: Iterable[str] = ()) -> list[Any]:
    """Check what an axis's ``run`` yielded; returns the rows as a list.

    Checks: at least one row; each a :class:`~polymodal.results.ResultRow` of
    this axis (made with ``ctx.row``), with a finite float value or None, JSON-
    serialisable conditions and extra, no two rows for the same metric and
    conditions (resume would drop one), and every metric in ``metrics`` present.
    """
    import json

    from polymodal.evaluation import condition_key
    from polymodal.results import ResultRow

    who = f"axis {axis}"
    rows = list(rows)
    _require(rows, who, "rows", "run() yields at least one row")
    seen: set[str] = set()
    for i, r in enumerate(rows):
        _require(isinstance(r, ResultRow), who, f"row {i}", f"a ResultRow made with ctx.row(), got {type(r).__name__}")
        _require(r.axis == axis, who, f"row {i}", f"axis {axis!r} (use ctx.row), got {r.axis!r}")
        _require(r.value is None or (isinstance(r.value, float) and math.isfinite(r.value)), who, f"row {i}",
                 f"a finite float value or None, got {r.value!r}")
        try:
            json.dumps(r.conditions)
            json.dumps(r.extra)
        except (TypeError, ValueError) as exc:
            raise ContractError(f"{who}: row {i}: conditions and extra must be JSON-serialisable: {exc}") from None
        key = condition_key(r.axis, r.metric, r.conditions)
        _require(key not in seen, who, f"row {i}", f"one row per metric and conditions; {r.metric!r} {r.conditions} "
                 "is repeated (add a condition that tells them apart)")
        seen.add(key)
    missing = sorted(set(metrics) - {r.metric for r in rows})
    _require(not missing, who, "metrics", f"rows for {missing}")
    return rows


def check_model(model: Any, batch: Any) -> Any:
    """Check a built model on a :class:`~polymodal.batch.Batch`; returns ``model``.

    Checks: a :class:`~polymodal.model_api.PolymodalModel`; ``loss(batch)``
    gives a finite scalar tensor that gradients flow from and a dict of float
    logs; for each declared capability its method answers in the promised
    shape (``classify``: logits ``[B, C]``; ``embed``: L2-normalised ``[B, D]``
    per ``embed_fields``); deterministic in eval mode; a batch where one input
    field is missing for every sample still gives finite predictions.
    """
    import torch

    from polymodal.batch import Batch, ModalityBatch
    from polymodal.model_api import PolymodalModel

    who = f"model {type(model).__name__}"
    _require(isinstance(model, PolymodalModel), who, "type", "a polymodal.model_api.PolymodalModel subclass")
    model.train()
    loss, logs = model.loss(batch)
    _require(isinstance(loss, torch.Tensor) and loss.dim() == 0 and bool(torch.isfinite(loss)), who, "loss()",
             "a finite scalar tensor first")
    _require(isinstance(logs, dict) and all(isinstance(v, (int, float)) for v in logs.values()), who, "loss()",
             "a dict[str, float] of figures second")
    loss.backward()
    _require(any(p.grad is not None for p in model.parameters()), who, "loss()", "a loss that gradients flow from")
    model.zero_grad(set_to_none=True)
    model.eval()
    caps = set(getattr(model, "capabilities", ()))
    b = len(batch)
    with torch.no_grad():
        if "classify" in caps:
            logits = model.predict(batch)
            _require(logits.dim() == 2 and logits.shape[0] == b, who, "predict()", f"logits [{b}, C], got "
                     f"{tuple(logits.shape)}")
            _require(torch.equal(logits, model.predict(batch)), who, "determinism", "same batch, same logits in eval")
            for field in list(batch.inputs)[: max(0, len(batch.inputs) - 1)] if len(batch.inputs) > 1 else []:
                missing = Batch({k: ModalityBatch(v.data, torch.zeros_like(v.mask) if k == field else v.mask, v.meta)
                                 for k, v in batch.inputs.items()}, batch.targets, batch.ids)
                _require(bool(torch.isfinite(model.predict(missing)).all()), who, "missing modality",
                         f"finite logits when {field!r} is missing for every sample")
        if "embed" in caps:
            for field in model.embed_fields:
                e = model.embed(batch, field)
                _require(e.dim() == 2 and e.shape[0] == b, who, f"embed(batch, {field!r})", "[B, D]")
                _require(torch.allclose(e.norm(dim=-1), torch.ones(b), atol=1e-4), who,
                         f"embed(batch, {field!r})", "L2-normalised rows")
    return model


def check_dataset(dataset: Any, *, samples: int = 8) -> Any:
    """Check a dataset object; returns it.

    Checks: ``fields`` maps str -> str, ``targets`` is a list of str, the
    dataset is not empty, and the first ``samples`` items are dicts with a
    unique ``id``, every target, and only declared fields (a missing modality
    is an absent key or ``None``). A streamed dataset (``iter_indices``, see
    :mod:`polymodal.streaming`) is read in order, and must give the samples
    of positions it skips past ``[0, 2, 3]`` the same as in a full read.
    """
    from polymodal.streaming import iter_samples

    who = f"dataset {getattr(dataset, 'name', type(dataset).__name__)}"
    fields, targets = getattr(dataset, "fields", None), getattr(dataset, "targets", None)
    _require(isinstance(fields, dict) and fields and all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in fields.items()),
             who, "fields", "a non-empty dict of sample field -> modality name")
    _require(isinstance(targets, list) and all(isinstance(t, str) for t in targets), who, "targets",
             "a list of target keys")
    _require(len(dataset) > 0, who, "len()", "at least one sample")
    ids = set()
    n = min(samples, len(dataset))
    items = list(iter_samples(dataset, range(n)))
    _require(len(items) == n, who, "iter_indices", f"{n} samples for positions 0..{n - 1}, got {len(items)}")
    picked = [0, 2, 3] if n > 3 else []
    if picked:
        again = [it.get("id") if isinstance(it, dict) else it for it in iter_samples(dataset, picked)]
        _require(again == [items[i].get("id") if isinstance(items[i], dict) else items[i] for i in picked], who,
                 f"samples {picked}", "the same samples read alone as in order")
    for i, item in enumerate(items):
        _require(isinstance(item, dict), who, f"item {i}", f"a dict, got {type(item).__name__}")
        _require("id" in item and item["id"] not in ids, who, f"item {i}", "a unique 'id'")
        ids.add(item["id"])
        missing = [t for t in targets if t not in item]
        _require(not missing, who, f"item {i}", f"every target; missing {missing}")
        unknown = sorted(set(item) - set(fields) - set(targets) - {"id"})
        _require(not unknown, who, f"item {i}", f"only declared fields and targets; undeclared {unknown}")
    return dataset


def check_attack(attack: Any, *, epsilon: float = 0.1, norm: str = "linf") -> Any:
    """Check a built attack; returns the deltas of its main call.

    Checks: one delta per input of the input's shape; zero deltas for
    ``epsilon=0``; every delta inside the ``norm`` ball of ``epsilon *
    scale`` per sample, inside the box bounds, and zero where the mask is
    zero; the same generator seed gives the same deltas.
    """
    import torch

    from polymodal.perturb import PerturbationSpace

    who = f"attack {type(attack).__name__}"
    x = torch.rand(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 1, 1, 1)
    mask[1] = 0
    # two inputs attacked jointly: one boxed to a valid range with a missing item, one unbounded with a scale
    inputs = {"boxed": PerturbationSpace(shape=x.shape, scale=1.0, mask=mask, lower=-x, upper=1 - x),
              "scaled": PerturbationSpace(shape=torch.Size((3, 5, 6)), scale=2.0)}
    weight = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(1))

    def loss_fn(deltas: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((x + deltas["boxed"]) ** 2).flatten(1).sum(1) + (deltas["scaled"] * weight).flatten(1).sum(1)

    zero = attack(loss_fn, inputs, epsilon=0.0, generator=torch.Generator().manual_seed(0))
    _require(all(float(d.abs().max()) == 0.0 for d in zero.values()), who, "epsilon=0", "all-zero deltas")
    deltas = attack(loss_fn, inputs, epsilon=epsilon, generator=torch.Generator().manual_seed(0))
    _require(set(deltas) == set(inputs), who, "deltas", f"one delta per input {sorted(inputs)}")
    for name, space in inputs.items():
        d = deltas[name].detach()
        _require(tuple(d.shape) == tuple(space.shape), who, name, f"a delta of shape {tuple(space.shape)}")
        flat = d.flatten(1)
        size = flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)
        _require(bool((size <= epsilon * space.scale * (1 + 1e-5) + 1e-7).all()), who, name,
                 f"inside the {norm} ball of radius epsilon * scale = {epsilon * space.scale}")
        if space.mask is not None:
            _require(float((d * (1 - space.mask)).abs().max()) == 0.0, who, name, "zero where the mask is zero")
        if space.lower is not None:
            _require(bool((d >= space.lower - 1e-6).all() and (d <= space.upper + 1e-6).all()), who, name,
                     "inside the box [lower, upper] (valid input range)")
    again = attack(loss_fn, inputs, epsilon=epsilon, generator=torch.Generator().manual_seed(0))
    _require(all(torch.equal(again[k].detach(), deltas[k].detach()) for k in inputs), who, "determinism",
             "the same generator seed gives the same deltas")
    return deltas


def check_strategy(factory: Callable[..., Any], model: Any, batch: Any, *, params: Any = None, ctx: Any = None,
                   seed: int = 0) -> Any:
    """Check a training-strategy factory (``factory(params, ctx)``) on a model and a batch; returns the strategy.

    Checks: the built object has ``begin_epoch``, ``loss``, ``state`` and
    ``load_state``; ``begin_epoch`` returns a non-empty phase name for epochs
    0 and 1 and leaves some parameter trainable; ``loss(model, batch)`` gives
    a finite scalar tensor that gradients reach a trainable parameter from,
    and a dict of float figures, and leaves the batch unchanged; the same ``ctx.seed`` gives the same loss
    whatever the global torch generator holds (randomness must come from a
    generator seeded with ``ctx.seed``); ``state()`` survives
    ``torch.save`` / ``torch.load(weights_only=True)`` as checkpoints store
    it, and a fresh strategy given it repeats the next loss exactly (what
    ``--resume`` promises). The model's ``requires_grad`` flags are restored
    afterwards. ``ctx`` defaults to ``StrategyContext(model=model, seed=seed)``.
    """
    import io

    import torch

    from polymodal.strategy import StrategyContext

    who = f"strategy {_name(factory)}"
    ctx = StrategyContext(model=model, seed=seed) if ctx is None else ctx
    flags = [(p, p.requires_grad) for p in model.parameters()]
    optimizer = torch.optim.SGD([p for p, _ in flags], lr=0.0)
    rng = torch.get_rng_state()

    def build() -> Any:
        for p, flag in flags:  # each strategy starts from the model as training would give it
            p.requires_grad_(flag)
        built = factory(params, ctx)
        for method in ("begin_epoch", "loss", "state", "load_state"):
            _require(callable(getattr(built, method, None)), who, method,
                     "a method of the built strategy (docs/kinds/strategy.md)")
        return built

    def begin(strategy: Any, epoch: int) -> None:
        phase = strategy.begin_epoch(model, epoch, optimizer)
        _require(isinstance(phase, str) and phase, who, f"begin_epoch(epoch={epoch})",
                 f"a non-empty phase name (str) for the logs, got {phase!r}")
        _require(any(p.requires_grad for p, _ in flags), who, f"begin_epoch(epoch={epoch})",
                 "some parameter left trainable")

    inputs = {k: (v.data.clone(), v.mask.clone()) for k, v in batch.inputs.items()}

    def loss_of(strategy: Any, rng_seed: int) -> Any:
        torch.manual_seed(rng_seed)  # a strategy that draws from the global generator gives different losses
        out = strategy.loss(model, batch)
        _require(set(batch.inputs) == set(inputs) and all(
            torch.equal(v.data, inputs[k][0]) and torch.equal(v.mask, inputs[k][1]) for k, v in batch.inputs.items()),
            who, "loss()", "the caller's batch left unchanged (build a new Batch, e.g. with attrs.evolve, instead "
            "of changing its tensors, masks or inputs in place)")
        _require(isinstance(out, tuple) and len(out) == 2, who, "loss()", "a (loss, logs) pair")
        loss, logs = out
        _require(isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.is_floating_point()
                 and bool(torch.isfinite(loss.detach())), who, "loss()", "a finite scalar float tensor first")
        _require(isinstance(logs, dict) and all(isinstance(k, str) and isinstance(v, (int, float))
                                                for k, v in logs.items()),
                 who, "loss()", "a dict[str, float] of figures second (float(t.detach()), not tensors)")
        return loss

    try:
        model.train()
        strategy = build()
        for epoch in (0, 1):
            begin(strategy, epoch)
        model.zero_grad(set_to_none=True)
        loss = loss_of(strategy, 0)
        _require(loss.requires_grad, who, "loss()", "a loss attached to the graph (not detached, not under no_grad)")
        loss.backward()
        _require(any(p.requires_grad and p.grad is not None for p, _ in flags), who, "loss()",
                 "gradients that reach a trainable parameter of the model")
        model.zero_grad(set_to_none=True)

        model.eval()  # dropout off: any difference below comes from the strategy
        first = build()
        begin(first, 0)
        before = loss_of(first, 1).detach()
        state = first.state()
        _require(isinstance(state, dict), who, "state()", f"a dict, got {type(state).__name__}")
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        try:
            state = torch.load(buffer, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - the reason goes into the message
            raise ContractError(f"{who}: state(): tensors, numbers, strings, lists and dicts only (checkpoints "
                                f"load it with torch.load(weights_only=True)); {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0]}") from exc
        after = loss_of(first, 2).detach()
        second = build()
        begin(second, 0)
        _require(torch.equal(loss_of(second, 3).detach(), before), who, "determinism",
                 "the same ctx.seed gives the same loss whatever the global torch generator holds "
                 "(draw randomness from a torch.Generator seeded with ctx.seed)")
        resumed = build()
        begin(resumed, 0)
        resumed.load_state(state)
        _require(torch.equal(loss_of(resumed, 4).detach(), after), who, "load_state(state())",
                 "a fresh strategy given the state repeats the next loss exactly (what --resume promises)")
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.zero_grad(set_to_none=True)
        torch.set_rng_state(rng)
    return strategy


__all__ = ["ContractError", "check_attack", "check_axis_rows", "check_dataset", "check_encoder", "check_fusion",
           "check_metric", "check_modality", "check_model", "check_strategy"]
