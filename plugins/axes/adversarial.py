"""``robustness.adversarial``: robust accuracy under FGSM / PGD attacks.

For each attacked *target* (one input field, or several attacked jointly),
each attack plugin and norm, and each epsilon, the attack maximises the
cross-entropy of the model's prediction; the rows report

* ``robust_accuracy``: fraction of samples still classified correctly;
* ``attack_success_rate``: fraction of originally-correct samples flipped.

Accuracy here is the ``classify`` headline, the registered metric built by
name (``accuracy``, or the axis's ``headline = { classify = "..." }``; see
:mod:`.performance`), so a plugin that ``replaces`` it is what the rows
measure. It is fed each sample's worst-case class scores: the attacked
scores that first fooled the sample over the nested balls, else the last
ones. Whether a sample is fooled (robust accuracy's worst case, and the
attack success rate) is the attack's own criterion, argmax against the
target, so the per-sample bookkeeping does not depend on the metric. A
headline other than the default names the rows ``robust_<its row name>``.

What is attacked, and how, comes from each field's modality traits (never
its name): a ``perturb_input`` modality is attacked on its tensor -- in its
unnormalised units when it declares ``normalised`` (mean/std undone), and
kept inside its ``value_range`` when it declares one (pixels stay in [0,
1]); a ``perturb_embedding`` modality (text) through an offset on the
model's input embedding
(:func:`polymodal_plugins.training.adversarial.embedding_offsets`), scaled by
``embedding_scale``. A field whose modality declares neither gets a row with
no value saying why it is not applicable. Padding tokens and missing items
are never perturbed.

A perturbation inside a smaller ball is also inside every larger one, so a
sample counts as robust at epsilon only if no attack at that or any smaller
epsilon fooled it: robust accuracy is the worst case over the nested balls
and never increases with epsilon.

Models that ``answer`` (and do not ``classify``) are attacked on the
likelihood of the reference answer (the most common human answer of a VQA
sample; the right option of a multiple-choice one, through the model's
``choice_loglik``): the attack ascends ``-answer_loglik(batch, answers)`` on every
``perturb_input`` field, in the field's own units before anything the
model does to it (hf-vlm resizes and normalises in torch, after the
attack). A model declares that this gradient reaches its inputs with
``differentiable_pixels = True``; without it the rows say why there are
none. The rows are ``robust_accuracy`` (the official VQA accuracy of the
replies, or choice accuracy, under attack, worst case over the nested balls) and
``likelihood_drop`` (mean clean minus attacked log-likelihood of the
reference answer) per attack, norm and epsilon.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from itertools import islice
from typing import Any

import attrs

from polymodal import structure
from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext, EvalData, clean_batch, declared_direction
from polymodal.results import ResultRow
from polymodal.streaming import is_streamed, iter_samples
from polymodal.traits import ModalityTraits, normalisation, not_applicable
from polymodal_plugins.axes.performance import HEADLINE, AccuracyMeter, Headline, check_headline, headline
from polymodal_plugins.axes.samples import field_object, field_traits

AXIS = "robustness.adversarial"

#: The direction of each figure this axis computes itself (the leaderboard reads it from the rows).
HIGHER_IS_BETTER = {"robust_accuracy": True, "attack_success_rate": False, "likelihood_drop": False}


def _clean_unit(ctx: AxisContext, accuracy: float, per_sample: list[float] | None, extra: dict[str, Any] | None,
                skipped: dict[str, str], metric: str = "robust_accuracy") -> Iterator[ResultRow]:
    """The ``clean`` unit both model kinds write: clean accuracy, and a reason row per field not attacked."""
    if ctx.unit_done("clean"):
        return
    with ctx.unit("clean"):
        yield ctx.row(metric, accuracy, extra=extra, attack="none", epsilon=0.0,
                      per_sample=per_sample, higher_is_better=HIGHER_IS_BETTER["robust_accuracy"])
        for f, reason in skipped.items():
            yield ctx.row(metric, None, extra={"reason": reason}, modality=f,
                          attack="not_applicable", higher_is_better=HIGHER_IS_BETTER["robust_accuracy"])


def _robust_name(head: Headline) -> str:
    """``robust_accuracy`` for the default headline (whoever provides it), else ``robust_<row name>``."""
    return "robust_accuracy" if head.name == HEADLINE[head.capability] else f"robust_{head.key}"


@attrs.define
class AdversarialParams:
    """The axis parameters from the suite's ``[axes."robustness.adversarial"]`` table."""

    attacks: list[str] = attrs.field(factory=lambda: ["fgsm", "pgd"])
    norms: list[str] = attrs.field(factory=lambda: ["linf"])
    #: L-inf radii, in pixel units for image/video (the clean point 0 is always evaluated).
    epsilons: list[float] = attrs.field(factory=lambda: [1 / 255, 2 / 255, 4 / 255, 8 / 255])
    #: L2 radii (per sample, over the whole field).
    l2_epsilons: list[float] = attrs.field(factory=lambda: [0.125, 0.25, 0.5, 1.0])
    steps: int = 10
    step_size: float | None = None
    random_start: bool = True
    #: Groups of fields attacked jointly; default: each input field alone, then all together.
    targets: list[list[str]] | None = None
    #: Epsilon multiplier for embedding-space (text) perturbations.
    embedding_scale: float = 8.0
    #: Per-field epsilon multipliers overriding the defaults.
    scales: dict[str, float] = attrs.field(factory=dict)
    batch_size: int = 64
    split: str | None = None
    #: Capability -> registered metric measured as robust accuracy (``performance.HEADLINE`` fills the rest):
    #: ``headline = { classify = "balanced-accuracy" }``. Lower-is-better metrics count as ``1 - value``.
    headline: dict[str, str] | None = None


class AdversarialAxis:
    """The ``robustness.adversarial`` axis (see the module docstring)."""

    requires: frozenset[str] = frozenset()
    requires_any: frozenset[str] = frozenset({"classify", "answer"})
    #: Fixed figures: a suite cannot choose them (``metrics`` is refused at validation). Each compares one
    #: higher-is-better headline per model kind (``performance.meter_factory``) between conditions.
    metric_feeds: frozenset[str] = frozenset()

    def __init__(self, **params: Any):
        self.params = p = structure(AdversarialParams, params, f"axes.{AXIS}")
        for norm in p.norms:
            if norm not in ("linf", "l2"):
                raise ConfigError(f"axes.{AXIS}.norms: expected linf or l2, got {norm!r}")
        for key in ("epsilons", "l2_epsilons"):
            if any(e < 0 for e in getattr(p, key)):
                raise ConfigError(f"axes.{AXIS}.{key}: epsilons must be >= 0")
        if p.batch_size < 1 or p.steps < 1:
            raise ConfigError(f"axes.{AXIS}: batch_size and steps must be positive")

    def validate(self, plugins: Any) -> None:
        """The ``headline`` metric names against the registry, before anything trains."""
        check_headline(plugins, self.params.headline, f"axes.{AXIS}")

    def _attacks(self, ctx: AxisContext) -> dict[tuple[str, str], Any]:
        p = self.params
        out = {}
        for name in p.attacks:
            spec = ctx.plugins.get("attacks", name)
            # The attack declares whether it walks in steps (``iterative``); one that declares nothing
            # gets the step options, as the attack contract has always promised.
            iterative = getattr(spec.load(), "iterative", True)
            for norm in p.norms:
                kwargs: dict[str, Any] = {"norm": norm}
                if iterative:
                    kwargs.update(steps=p.steps, step_size=p.step_size, random_start=p.random_start)
                try:
                    out[(name, norm)] = spec.build(**kwargs)
                except TypeError as exc:
                    raise ConfigError(f"axes.{AXIS}.attacks: attack {name!r}: {exc}") from None
        return out

    def _targets(self, model: Any, data: EvalData) -> tuple[list[tuple[str, ...]], dict[str, str]]:
        """The attacked groups, and the fields left out with the reason (their modality declares no way in)."""
        fields = tuple(model.input_fields)
        skipped = {f: not_applicable("an adversarial attack", f, field_object(data, f),
                                     "the perturb_input or perturb_embedding trait")
                   for f in fields if not _attackable(field_traits(data, f))}
        if self.params.targets is None:
            usable = tuple(f for f in fields if f not in skipped)
            return [(f,) for f in usable] + ([usable] if len(usable) > 1 else []), skipped
        for group in self.params.targets:
            for f in group:
                if f not in fields:
                    raise ConfigError(f"axes.{AXIS}.targets: model reads no field {f!r} (its fields: {', '.join(fields)})")
                if f in skipped:
                    raise ConfigError(f"axes.{AXIS}.targets: {skipped[f]}; leave it out of the targets")
        return [tuple(g) for g in self.params.targets if g], {}

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow]:
        import torch
        from torchmetrics.aggregation import SumMetric

        p = self.params
        split = p.split or ctx.split
        if split not in data.splits:
            raise ConfigError(f"axes.{AXIS}.split: no split {split!r} (have: {', '.join(data.splits)})")
        caps = set(getattr(model, "capabilities", ()))
        if "classify" not in caps and "answer" in caps:
            yield from self._answering(model, data, ctx, split)
            return
        dataset = data.splits[split]
        attacks = self._attacks(ctx)
        targets, skipped = self._targets(model, data)
        eps_of = {"linf": sorted(p.epsilons), "l2": sorted(p.l2_epsilons)}
        # One unit of work per (target, attack, norm): both rows of every epsilon commit together.
        jobs = [(t, a, norm) for t in targets for (a, norm) in attacks
                if not ctx.unit_done("attack", modality="+".join(t), attack=a, norm=norm)]
        counts: dict[Any, SumMetric] = {}
        head = headline(ctx.plugins, "classify", p.headline)
        robust_name = _robust_name(head)
        # The headline metric per condition, fed each sample's worst-case scores (module docs).
        meters = {key: AccuracyMeter(head) for key in ["clean"] + [("+".join(g), a, norm, e)
                                                                   for g, a, norm in jobs for e in eps_of[norm]]}

        def add(key: Any, value: Any) -> None:
            counts.setdefault(key, SumMetric()).update(torch.as_tensor(float(value)))

        # Shard by whole batches: a batch's random start is seeded by its first index, so batches
        # must be the ones a single process forms for ranks to reproduce its figures exactly.
        indices = list(ctx.shard(ctx.limited(len(dataset)), block=p.batch_size))
        chunks = [indices[i:i + p.batch_size] for i in range(0, len(indices), p.batch_size)]
        worst: dict[Any, float] = {}
        # Per-sample outcomes (split order) behind each rate, for intervals and paired tests: clean and
        # robust correctness over every sample, attack success over the clean-correct ones (with their ids).
        per: dict[Any, list[float]] = {}
        per_ids: dict[Any, list[int]] = {}
        model.eval()
        stream = iter_samples(dataset, indices) if is_streamed(dataset) else None  # streamed data: one pass
        for done, chunk in enumerate(chunks):
            read = None if stream is None else list(islice(stream, len(chunk)))
            batch = clean_batch(data, split, chunk, dataset, samples=read)[1].to(ctx.device)
            target = model.target(batch).to(ctx.device)
            with torch.no_grad():
                clean_scores = model.predict(batch)
            clean_ok = clean_scores.argmax(-1) == target
            meters["clean"].add(clean_scores, target)
            add("total", len(chunk))
            add("clean", clean_ok.sum())
            for group, name, norm in jobs:
                robust = clean_ok.clone()
                fooling = clean_scores
                spaces, apply = self._spaces(model, batch, group, data)
                for eps in eps_of[norm]:
                    gen = torch.Generator()
                    gen.manual_seed(zlib.crc32(f"{ctx.seed}/{chunk[0]}/{group}/{name}/{norm}/{eps}".encode()))
                    attack = attacks[(name, norm)]
                    with _cudnn_off(ctx.device):
                        deltas = attack(lambda d: _loss(model, apply(d), target), spaces, epsilon=eps,
                                        generator=gen, device=ctx.device)
                    with torch.no_grad():
                        adv_batch, offsets = apply(deltas)
                        with offsets:
                            scores = model.predict(adv_batch)
                    # A sample fooled at a smaller epsilon keeps the scores that fooled it (nested balls).
                    fooling = torch.where(robust[:, None], scores, fooling)
                    robust &= scores.argmax(-1) == target
                    key = ("+".join(group), name, norm, eps)
                    meters[key].add(fooling, target)
                    add(("flipped",) + key, (clean_ok & ~robust).sum())
                    kept = clean_ok.nonzero().flatten().tolist()
                    per.setdefault(("flipped",) + key, []).extend((~robust[kept]).float().tolist())
                    per_ids.setdefault(("flipped",) + key, []).extend(chunk[i] for i in kept)
                    for f, d in deltas.items():
                        flat = d.detach().flatten(1)
                        size = flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)
                        scale = spaces[f].scale
                        worst[key + (f,)] = max(worst.get(key + (f,), 0.0), float(size.max()) / scale if scale else 0.0)
            ctx.progress(done + 1, len(chunks), f"{AXIS} {split}")

        # Every rank reaches here with the same keys (jobs and epsilons do not depend on the shard);
        # a rank with an empty shard still takes part in each metric's synchronisation.
        for key in ["total", "clean"] + [("flipped", "+".join(g), a, norm, e)
                                         for g, a, norm in jobs for e in eps_of[norm]]:
            counts.setdefault(key, SumMetric())
        # Every rank computes every meter, in one order (each a collective), before any branch on the data.
        headlines = {key: meter.compute()[(head.key, None)] for key, meter in meters.items()}
        worst_keys = sorted(("+".join(g), a, norm, e, f) for g, a, norm in jobs for e in eps_of[norm] for f in g)
        worst = dict(zip(worst_keys, ctx.all_reduce_max([worst.get(k, 0.0) for k in worst_keys]), strict=True))
        # Gathered in a fixed key order on every rank, whatever its shard held.
        per_keys = [("flipped", "+".join(g), a, norm, e) for g, a, norm in jobs for e in eps_of[norm]]
        parts = ctx.all_gather_object((per, per_ids))  # one collective for every key
        per = {k: [x for part, _ in parts for x in part.get(k, [])] for k in per_keys}
        per_ids = {k: [x for _, part in parts for x in part.get(k, [])] for k in per_keys}
        total = float(counts["total"].compute())
        if not total:
            return
        clean_correct = float(counts["clean"].compute())
        extra_head = None if robust_name == "robust_accuracy" else {"headline": head.name}
        yield from _clean_unit(ctx, headlines["clean"], meters["clean"].samples.get((head.key, None)), extra_head,
                               skipped, robust_name)
        for group, name, norm in jobs:
            label = "+".join(group)
            with ctx.unit("attack", modality=label, attack=name, norm=norm):
                for eps in eps_of[norm]:
                    key = (label, name, norm, eps)
                    extra = {"samples": int(total), "clean_correct": int(clean_correct),
                             "max_perturbation": {f: worst.get(key + (f,), 0.0) for f in group},
                             "scales": {f: self._scale(model, f) for f in group}, **(extra_head or {})}
                    flipped = float(counts[("flipped",) + key].compute())
                    conds = {"modality": label, "attack": name, "norm": norm, "epsilon": eps}
                    yield ctx.row(robust_name, headlines[key], extra=extra, **conds,
                                  per_sample=meters[key].samples.get((head.key, None)),
                                  higher_is_better=HIGHER_IS_BETTER["robust_accuracy"])
                    yield ctx.row("attack_success_rate", flipped / clean_correct if clean_correct else None,
                                  extra=extra, **conds, per_sample=per[("flipped",) + key] or None,
                                  sample_ids=per_ids[("flipped",) + key] or None,
                                  higher_is_better=HIGHER_IS_BETTER["attack_success_rate"])

    # -- answering models: the reference answer's likelihood ----------------------------------------
    def _answering(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        import torch

        from polymodal_plugins.axes.samples import with_raw_texts

        p = self.params
        hib = HIGHER_IS_BETTER
        fields = tuple(model.input_fields)
        pixel = [f for f in fields if field_traits(data, f).perturb_input]
        skipped = {f: not_applicable("an attack on the answer's likelihood", f, field_object(data, f),
                                     "the perturb_input trait") for f in fields if f not in pixel}
        if not getattr(model, "differentiable_pixels", False):
            why = getattr(model, "pixels", None)
            for f in pixel:
                skipped[f] = (f"model {type(model).__name__} does not declare differentiable_pixels, so no gradient of "
                              f"the answer's likelihood reaches field {f!r}" + (f" ({why})" if isinstance(why, str) else ""))
            pixel = []
        groups = [(f,) for f in pixel] + ([tuple(pixel)] if len(pixel) > 1 else [])
        if p.targets is not None:
            for f in {f for g in p.targets for f in g}:
                if f not in pixel:
                    why = skipped.get(f, f"model reads no field {f!r} (its fields: {', '.join(fields)})")
                    raise ConfigError(f"axes.{AXIS}.targets: {why}; leave it out of the targets")
            groups = [tuple(g) for g in p.targets if g]
        attacks = self._attacks(ctx)
        jobs = [(g, a, norm) for g in groups for (a, norm) in attacks
                if not ctx.unit_done("attack", modality="+".join(g), attack=a, norm=norm)]
        eps_of = {"linf": sorted(p.epsilons), "l2": sorted(p.l2_epsilons)}
        if not jobs and ctx.unit_done("clean"):  # resumed after every unit was committed
            return
        dataset = data.splits[split]
        indices = list(ctx.shard(ctx.limited(len(dataset)), block=p.batch_size))
        per: dict[Any, list[float]] = {}
        head = headline(ctx.plugins, "answer", p.headline)
        robust_name = _robust_name(head)
        model.eval()
        for done, lo in enumerate(range(0, len(indices), p.batch_size)):
            chunk = indices[lo:lo + p.batch_size]
            samples = [dataset[i] for i in chunk]
            batch = with_raw_texts(data, samples=samples, batch=data.collate(samples).to(ctx.device))
            score, loglik = _answer_objective(model, samples, head)
            with torch.no_grad():
                clean = score(batch)
                clean_ll = loglik(batch).detach().float().cpu()
            per.setdefault("clean", []).extend(clean.tolist())
            per.setdefault("clean_ll", []).extend(clean_ll.tolist())
            for group, name, norm in jobs:
                robust = clean.clone()
                spaces, apply = self._spaces(model, batch, group, data)
                for eps in eps_of[norm]:
                    gen = torch.Generator()
                    gen.manual_seed(zlib.crc32(f"{ctx.seed}/{chunk[0]}/{group}/{name}/{norm}/{eps}".encode()))

                    def loss(d: Any) -> Any:
                        adv, offsets = apply(d)
                        with offsets:
                            return -loglik(adv)

                    with _cudnn_off(ctx.device):
                        deltas = attacks[(name, norm)](loss, spaces, epsilon=eps, generator=gen, device=ctx.device)
                    with torch.no_grad():
                        adv_batch, offsets = apply(deltas)
                        with offsets:
                            robust = torch.minimum(robust, score(adv_batch))
                            drop = clean_ll - loglik(adv_batch).detach().float().cpu()
                    key = ("+".join(group), name, norm, eps)
                    per.setdefault(("robust",) + key, []).extend(robust.tolist())
                    per.setdefault(("drop",) + key, []).extend(drop.tolist())
            ctx.progress(done + 1, -(-len(indices) // p.batch_size), f"{AXIS} {split}")

        keys = ["clean", "clean_ll"] + [(kind, "+".join(g), a, norm, e) for kind in ("robust", "drop")
                                        for g, a, norm in jobs for e in eps_of[norm]]
        parts = ctx.all_gather_object(per)  # one collective, every rank, whatever its shard held
        per = {k: [x for part in parts for x in part.get(k, [])] for k in keys}
        total = len(per["clean"])
        if not total:
            return
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        extra = {"samples": total, "target": "reference answer (most common human answer, or the right option)",
                 "clean_answer_loglik": mean(per["clean_ll"])}
        if robust_name != "robust_accuracy":
            extra["headline"] = head.name
        yield from _clean_unit(ctx, mean(per["clean"]), per["clean"], extra, skipped, robust_name)
        for group, name, norm in jobs:
            label = "+".join(group)
            with ctx.unit("attack", modality=label, attack=name, norm=norm):
                for eps in eps_of[norm]:
                    conds = {"modality": label, "attack": name, "norm": norm, "epsilon": eps}
                    for metric, kind in ((robust_name, "robust"), ("likelihood_drop", "drop")):
                        values = per[(kind, label, name, norm, eps)]
                        yield ctx.row(metric, mean(values), extra=extra, **conds, per_sample=values,
                                      higher_is_better=hib["robust_accuracy" if kind == "robust" else metric])

    def _scale(self, model: Any, field: str) -> float:
        if field in self.params.scales:
            return float(self.params.scales[field])
        return 1.0 if model.input_embedding(field) is None else self.params.embedding_scale

    def _spaces(self, model: Any, batch: Any, group: tuple[str, ...], data: EvalData) -> tuple[dict[str, Any], Any]:
        """The perturbation spaces of ``group`` and a function deltas -> (adversarial batch, embedding hooks)."""
        import torch

        from polymodal.batch import Batch, ModalityBatch
        from polymodal.perturb import PerturbationSpace, embedding_offsets
        from polymodal.perturb import mask_like as _mask_like

        spaces: dict[str, PerturbationSpace] = {}
        to_input: dict[str, Any] = {}
        discrete: list[str] = []
        for f in group:
            if f not in batch.inputs:
                continue
            mb = batch.inputs[f]
            traits = field_traits(data, f)
            if traits.perturb_input:
                mask = _mask_like(mb, mb.data)
                mean, std = _normalisation(field_object(data, f), traits, mb.data)
                natural = mb.data * std + mean
                bounds = {}
                if traits.value_range is not None:
                    low, high = traits.value_range
                    bounds = {"lower": low - natural, "upper": high - natural}
                spaces[f] = PerturbationSpace(mb.data.shape, self._scale(model, f), mask, **bounds)
                to_input[f] = lambda d, std=std: d / std
            else:
                emb = model.input_embedding(f)
                if emb is None:
                    raise ConfigError(f"axes.{AXIS}.targets: field {f!r} is discrete and its encoder has no "
                                      "nn.Embedding to perturb; leave it out of the targets")
                shape = torch.Size((*mb.data.shape[:2], emb.embedding_dim))
                spaces[f] = PerturbationSpace(shape, self._scale(model, f), _mask_like(mb, torch.empty(shape)).to(mb.data.device))
                discrete.append(f)

        def apply(deltas: dict[str, torch.Tensor]) -> tuple[Batch, Any]:
            inputs = dict(batch.inputs)
            for f, conv in to_input.items():
                mb = inputs[f]
                inputs[f] = ModalityBatch(mb.data + conv(deltas[f]), mb.mask, mb.meta)
            return Batch(inputs, batch.targets, batch.ids), embedding_offsets(model, {f: deltas[f] for f in discrete})

        return spaces, apply


def _answer_objective(model: Any, samples: list[dict[str, Any]], head: Headline) -> tuple[Any, Any]:
    """(score, loglik) of a batch of answering samples: per-sample correctness in [0, 1], and the
    log-likelihood ``[B]`` of the right reply the attack pushes down.

    VQA samples (``answers``): the answer headline metric's per-question scores of the
    reply (registered ``vqa-accuracy``, the official VQA accuracy, or the plugin that
    replaces it; its ``last_scores`` after an update), and the most common human
    answer (first on ties). Multiple-choice samples (``options``,
    ``answer``): whether the model picks the right option, and the model's
    ``choice_loglik`` of that option.
    """
    import torch

    def vqa_scores(b: Any) -> Any:
        metric = head.build()
        metric.update(model.answer(b), humans)
        got = getattr(metric, "last_scores", None)
        if not isinstance(got, list) or len(got) != len(humans):
            raise ConfigError(f"axes.{AXIS}: answer metric {head.name!r} keeps no per-question scores (a "
                              "last_scores list after update); robust accuracy is a per-question minimum")
        return torch.tensor(got if declared_direction(metric) is not False else [1.0 - x for x in got])

    kinds = {"vqa" if s.get("answers") else "choice" if "options" in s and "answer" in s else None for s in samples}
    if kinds == {"vqa"}:
        humans = [[str(a) for a in s["answers"]] for s in samples]
        refs = [max(h, key=h.count) for h in humans]
        return vqa_scores, lambda b: model.answer_loglik(b, refs)
    if kinds == {"choice"}:
        if not callable(getattr(model, "choice_loglik", None)):
            raise ConfigError(f"axes.{AXIS}: model {type(model).__name__} has no choice_loglik(batch, options, picks), "
                              "which the attack on multiple-choice samples needs")
        options = [list(s["options"]) for s in samples]
        right = [int(s["answer"]) for s in samples]
        return (lambda b: torch.tensor([float(k == r) for k, r in zip(model.answer_choice(b, options)[0], right,
                                                                       strict=True)]),
                lambda b: model.choice_loglik(b, options, right))
    bad = next(s for s in samples if not s.get("answers") and not ("options" in s and "answer" in s))
    raise ConfigError(f"axes.{AXIS}: sample {bad.get('id', '?')!r}: an attack on an answering model needs every "
                      "sample to carry 'answers' (VQA) or 'options' and 'answer' (multiple choice), not a mix")


def _loss(model: Any, adv: tuple[Any, Any], target: Any) -> Any:
    import torch.nn.functional as F

    batch, offsets = adv
    with offsets:
        return F.cross_entropy(model.predict(batch), target, reduction="none")


def _attackable(traits: ModalityTraits) -> bool:
    return traits.perturb_input or traits.perturb_embedding


def _normalisation(modality: Any, traits: ModalityTraits, like: Any) -> tuple[Any, Any]:
    """Mean/std broadcastable to the batch ``like`` (0 and 1 when the modality is not normalised)."""
    import torch

    found = normalisation(modality)
    if found is None or traits.channel_dim is None:
        return 0.0, 1.0
    mean, std = found
    shape = [1] * like.dim()
    shape[traits.channel_dim + 1] = len(mean)  # +1: the batch dimension
    return (torch.tensor(mean, dtype=like.dtype, device=like.device).view(shape),
            torch.tensor(std, dtype=like.dtype, device=like.device).view(shape))


def _cudnn_off(device: Any) -> Any:
    """cuDNN RNNs refuse backward in eval mode; attacks need input gradients of eval-mode models."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()
