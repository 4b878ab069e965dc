"""``interpretability.importance``: which modality and which input features drive a prediction.

Modality importance
    *ablation*: the drop of the value function when one modality is removed;
    *exact Shapley values* over the ``M`` modalities from all ``2^M``
    coalitions, where a modality outside the coalition is missing for every
    sample (all-false mask, the platform's meaning of an absent modality).
    The value function ``v(S)`` is accuracy or the mean probability of the
    true class on the evaluation split, so by the efficiency property the
    values sum to ``v(all) - v(none)``; the axis records that residual.
    Accuracy is the ``classify`` headline built by name (registered
    ``accuracy``, a plugin that ``replaces`` it, or the axis's
    ``headline = { classify = "..." }``; extra ``headline`` names a chosen one).

Feature attribution (fields whose modality is ``continuous`` and ``perturb_input``)
    *integrated gradients* of the true-class logit with a midpoint Riemann
    sum, and its completeness error; *occlusion*: the drop of the true-class
    probability when a patch of the image is replaced by the baseline. The
    baseline (in the model's preprocessed input space) defaults to a heavy
    blur of the input: a zero (or any scaled) baseline is degenerate for
    encoders that normalise activations (GroupNorm/LayerNorm after a
    bias-free layer make ``f(a * x)`` constant in ``a``, so the whole
    attribution would collapse onto the last step before zero).

Time occlusion (``transcribe`` models)
    a transcriber has no class logit, so its attribution is occlusion over
    time: each clip of the first continuous field is cut into
    ``time_segments`` equal parts, each part in turn is replaced by the
    baseline, and the rise of the corpus WER (equal to jiwer, normalised) is
    that part's importance. Rows ``segment_wer_increase`` per ``segment``
    (its position, 0 = start of the clip) and ``segment_importance_spread``
    (max minus min over positions). Modality ablation needs several input
    fields and is not run for a model that reads one. The error rate is the
    ``transcribe`` headline built by name (registered ``wer``, or the axis's
    ``headline = { transcribe = "cer" }``; extra ``headline`` names it), so a
    plugin that ``replaces`` it is what is measured.

Time occlusion (classifiers)
    for each attributable field whose modality declares a time dimension
    (video frames, audio frames), the clip is cut into ``time_segments``
    equal parts (fewer when it has fewer steps; parts follow each sample's
    real length from its mask), each part in turn is replaced by the
    baseline, and the drop of the true-class probability is that part's
    importance: rows ``segment_prob_drop`` per ``segment`` and
    ``segment_importance_spread``, with ``method="time_occlusion"``. Run
    with the ``occlusion`` method.

Modality importance of answering models (``answer``)
    a generative model has no class logit either: the value of a coalition
    is the mean log-likelihood of the model's own clean reply when the
    modalities outside it are blanked (a textual field's strings become
    empty, any other field is replaced by the baseline). Rows ``ablation_drop``
    and ``shapley`` per modality (``value = "answer_loglik"``); by efficiency
    the Shapley values sum to ``v(all) - v(none)``. The model provides
    ``answer(batch)`` and ``answer_loglik(batch, replies) -> Tensor [B]``.

Faithfulness
    the *deletion curve*: features are set to the baseline in order of
    attribution (most important first) and, as a control, in random order;
    the true-class probability is measured after each step. A faithful
    attribution falls faster, i.e. has the smaller area under the curve. Both
    AUCs are reported, and ``deletion_faithful`` is 1 when the attribution
    beats random.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from polymodal.batch import Batch, ModalityBatch
from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext, EvalData
from polymodal.results import ResultRow
from polymodal.traits import ModalityTraits, not_applicable
from polymodal_plugins.axes import heatmaps
from polymodal_plugins.axes.params import as_list
from polymodal_plugins.axes.samples import (RAW_STRINGS, chunks, field_object, field_traits, load_image, transcript_field,
                                            with_raw_texts, without)

METHODS = ("ablation", "shapley", "integrated_gradients", "occlusion", "deletion")


def _choice(options: tuple[str, ...]) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v not in options]
        if bad:
            raise ConfigError(f"axis interpretability.importance: {attribute.name}: unknown {bad}; "
                              f"choose from {', '.join(options)}")
    return check


def shapley_values(values: dict[frozenset[str], float], players: list[str]) -> dict[str, float]:
    """Exact Shapley values from the value of every coalition (``2^M`` entries).

    ``phi_i = sum_{S without i} |S|! (M-|S|-1)! / M! * (v(S + i) - v(S))``.
    """
    m = len(players)
    out = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for size in range(m):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                total += weight * (values[s | {p}] - values[s])
        out[p] = total
    return out


def deletion_auc(curve: np.ndarray) -> float:
    """Area under a deletion curve sampled at equally spaced fractions of ``[0, 1]`` (trapezoid)."""
    fractions = np.linspace(0.0, 1.0, len(curve))
    return float(np.trapezoid(curve, fractions))


@attrs.define
class ImportanceAxis:
    """Modality importance, feature attribution and the deletion faithfulness check (module docs)."""

    requires: ClassVar[frozenset[str]] = frozenset()
    requires_any: ClassVar[frozenset[str]] = frozenset({"classify", "transcribe", "answer"})
    #: Fixed figures: a suite cannot choose them (``metrics`` is refused at validation); they are
    #: attributions and ablation drops of the model's own score, not metrics of the registry.
    metric_feeds: ClassVar[frozenset[str]] = frozenset()

    split: str | None = None
    #: ``accuracy`` or ``true_prob`` (mean probability of the true class): the coalition value.
    value: str = attrs.field(default="true_prob", validator=_choice(("accuracy", "true_prob")))
    methods: list[str] = attrs.field(default=METHODS, converter=as_list, validator=_choice(METHODS))
    #: Which target to explain (default: the model's ``target``).
    target: str | None = None
    #: ``blur`` (images; other fields: their mean), ``mean`` (per-sample constant) or ``zeros``.
    baseline: str = attrs.field(default="blur", validator=_choice(("blur", "mean", "zeros")))
    ig_steps: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    occlusion_patch: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    deletion_steps: int = attrs.field(default=10, validator=attrs.validators.ge(2))
    #: Samples used for the (costlier) feature attribution and deletion curves.
    attribution_samples: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    #: Field the deletion curve perturbs (default: the first image field, else first continuous one).
    deletion_field: str | None = None
    examples: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    batch_size: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    #: Transcribers: how many equal time segments each clip is cut into for occlusion.
    time_segments: int = attrs.field(default=8, validator=attrs.validators.ge(2))
    #: Capability -> registered metric (``performance.HEADLINE`` fills the rest), as for the robustness axes:
    #: ``headline = { transcribe = "cer" }`` makes time occlusion measure the rise of the CER.
    headline: dict[str, str] | None = None

    def validate(self, plugins: Any) -> None:
        """The ``headline`` metric names against the registry, before anything trains."""
        from polymodal_plugins.axes.performance import check_headline

        check_headline(plugins, self.headline, "axes.interpretability.importance")

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow]:
        if ctx.rank != 0:  # coalition values need every sample; rank 0 measures the whole split
            return
        split = self.split or ctx.split
        caps = set(getattr(model, "capabilities", ()))
        if "classify" not in caps and "answer" in caps:
            if not ctx.unit_done("answer-modalities"):
                with ctx.unit("answer-modalities"):
                    yield from self._answer_modalities(model, data, ctx, split)
            return
        if "classify" not in caps:
            if "transcribe" not in caps:
                raise ConfigError(f"axis interpretability.importance: model {type(model).__name__} can neither "
                                  "classify nor transcribe")
            yield from self._time_occlusion(model, data, ctx, split)
            return
        target = self.target or model.config.target
        fields = [f for f in model.input_fields if f in getattr(data.collate, "modalities", {})] or list(model.input_fields)
        # Two units of work: the modality block and the feature block, each committed with its artifacts
        # (a resumed run re-measures a block only if it was not committed as a whole).
        if ("ablation" in self.methods or "shapley" in self.methods) and not ctx.unit_done("modalities"):
            with ctx.unit("modalities"):
                yield from self._modalities(model, data, ctx, split, target, fields)
        continuous = [f for f in fields if _attributable(field_traits(data, f))]
        skipped = [f for f in fields if f not in continuous]
        if skipped and {"integrated_gradients", "occlusion", "deletion"} & set(self.methods) \
                and not ctx.unit_done("not-applicable"):
            with ctx.unit("not-applicable"):
                for f in skipped:
                    yield ctx.row("attribution_share", None, modality=f, method="integrated_gradients",
                                  extra={"reason": not_applicable("feature attribution", f, field_object(data, f),
                                                                  "the continuous and perturb_input traits")})
        wanted = {"integrated_gradients", "occlusion", "deletion"} & set(self.methods)
        if wanted and continuous and not ctx.unit_done("features"):
            with ctx.unit("features"):
                yield from self._features(model, data, ctx, split, target, continuous)

    # -- transcribers: which part of the clip the transcript depends on -------------------------
    def _time_occlusion(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        from polymodal_plugins.axes.performance import headline

        field = next((f for f in model.input_fields if _attributable(field_traits(data, f))), None)
        ref_field = transcript_field(model)
        if field is None:
            raise ConfigError("axis interpretability.importance: the transcriber reads no continuous field")
        # The transcribe headline (registered ``wer``; a plugin that replaces it is what is used), one
        # metric for the clean transcripts and one per occluded segment.
        head = headline(ctx.plugins, "transcribe", self.headline)
        k = self.time_segments
        clean_metric = head.build(normalize=True)
        occluded = [head.build(normalize=True) for _ in range(k)]
        seen = 0
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="importance: time occlusion",
                                limit=self.attribution_samples, sharded=False):
                refs = [s.get(ref_field) for s in chunk.samples]
                if not all(isinstance(r, str) for r in refs):
                    raise ConfigError(f"axis interpretability.importance: samples need a reference transcript "
                                      f"field {ref_field!r}")
                clean_metric.update(model.transcribe(chunk.batch), refs)
                seen += sum(len(r.split()) for r in refs)
                mb = chunk.batch.inputs[field]
                x0 = baseline_of(mb.data, self.baseline)
                lengths = mb.mask.reshape(mb.mask.shape[0], -1).sum(1) if mb.mask.dim() > 1 else mb.mask.long()
                positions = torch.arange(mb.data.shape[1], device=mb.data.device)
                for j in range(k):
                    start = (lengths * j) // k
                    stop = (lengths * (j + 1)) // k
                    inside = (positions[None, :] >= start[:, None]) & (positions[None, :] < stop[:, None])
                    inside = inside.reshape(*inside.shape, *([1] * (mb.data.dim() - 2)))
                    hyps = model.transcribe(_replace(chunk.batch, field, torch.where(inside, x0, mb.data)))
                    occluded[j].update(hyps, refs)
        if seen == 0:
            return
        with ctx.local():  # every rank saw the same (unsharded) samples: no metric sync
            clean = head.value(clean_metric)
            rises = [clean - head.value(m) for m in occluded]
        extra = {"field": field, "segments": k, "clean_wer": 1.0 - clean, "baseline": self.baseline,
                 "higher_is_better": True, "headline": head.name}
        for j, rise in enumerate(rises):
            yield ctx.row("segment_wer_increase", rise, extra=extra, method="time_occlusion", segment=j)
        yield ctx.row("segment_importance_spread", max(rises) - min(rises), extra={**extra, "values": rises},
                      method="time_occlusion")

    # -- answering models: image vs prompt -----------------------------------------------------
    def _answer_modalities(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        fields = [f for f in model.input_fields if f in getattr(data.collate, "modalities", {})]
        coalitions = [frozenset(c) for r in range(len(fields) + 1) for c in itertools.combinations(fields, r)]
        sums = {c: 0.0 for c in coalitions}
        count = 0
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="importance: answer coalitions",
                                limit=self.attribution_samples, sharded=False):
                batch = with_raw_texts(data, chunk)
                replies = model.answer(batch)
                for c in coalitions:
                    blanked = batch
                    for f in fields:
                        if f not in c:
                            blanked = self._blank(data, blanked, f)
                    sums[c] += float(model.answer_loglik(blanked, replies).sum())
                count += len(chunk.indices)
        if count == 0:
            return
        v = {c: s / count for c, s in sums.items()}
        full, empty = v[frozenset(fields)], v[frozenset()]
        extra = {"value": "answer_loglik", "full": full, "empty": empty, "samples": count,
                 "coalitions": {"+".join(sorted(c)) or "none": val for c, val in v.items()}}
        if "ablation" in self.methods:
            for f in fields:
                yield ctx.row("ablation_drop", full - v[frozenset(fields) - {f}], extra=extra, modality=f,
                              method="ablation")
        if "shapley" in self.methods:
            phi = shapley_values(v, fields)
            residual = sum(phi.values()) - (full - empty)
            for f, p in phi.items():
                yield ctx.row("shapley", p, extra={**extra, "efficiency_residual": residual}, modality=f,
                              method="shapley")
            ctx.artifact("importance", {**phi, "method": "shapley", "value": "answer_loglik"})

    def _blank(self, data: EvalData, batch: Batch, field: str) -> Batch:
        """``field`` carrying no information: empty strings for a textual field, else the baseline."""
        mb = batch.inputs[field]
        if field_traits(data, field).textual and isinstance(mb.meta.get(RAW_STRINGS), list):
            new = attrs.evolve(mb, meta={**mb.meta, RAW_STRINGS: [""] * len(mb.meta[RAW_STRINGS])})
        else:
            new = attrs.evolve(mb, data=baseline_of(mb.data, self.baseline))
        return attrs.evolve(batch, inputs={**batch.inputs, field: new})

    # -- modality importance ------------------------------------------------------------------
    def _modalities(self, model: Any, data: EvalData, ctx: AxisContext, split: str, target: str,
                    fields: list[str]) -> Iterator[ResultRow]:
        from polymodal_plugins.axes.performance import AccuracyMeter, headline

        coalitions = [frozenset(c) for r in range(len(fields) + 1) for c in itertools.combinations(fields, r)]
        sums = {c: 0.0 for c in coalitions}
        # ``value = "accuracy"``: the classify headline (registered ``accuracy``, a replacement, or ``headline``).
        head = headline(ctx.plugins, "classify", self.headline) if self.value == "accuracy" else None
        meters = {c: AccuracyMeter(head) for c in coalitions} if head is not None else {}
        count = 0
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="importance: coalitions", sharded=False):
                y = chunk.batch.targets[target].long()
                for c in coalitions:
                    logits = model.predict(without(chunk.batch, [f for f in fields if f not in c]))
                    if head is not None:
                        meters[c].add(logits, y)
                    else:
                        sums[c] += float(_value(logits, y, self.value).sum())
                count += len(chunk.indices)
        if count == 0:
            return
        if head is not None:
            with ctx.local():  # rank 0 measured every sample: no collectives
                v = {c: meters[c].compute()[(head.key, None)] for c in coalitions}
        else:
            v = {c: s / count for c, s in sums.items()}
        full, empty = v[frozenset(fields)], v[frozenset()]
        extra = {"value": self.value, "full": full, "empty": empty, "samples": count,
                 "coalitions": {"+".join(sorted(c)) or "none": val for c, val in v.items()}}
        if head is not None:
            extra["headline"] = head.name
        if "ablation" in self.methods:
            drops = {f: full - v[frozenset(fields) - {f}] for f in fields}
            for f, d in drops.items():
                yield ctx.row("ablation_drop", d, extra=extra, modality=f, method="ablation")
            ctx.artifact("importance", {**drops, "method": "ablation", "value": self.value})
        if "shapley" in self.methods:
            phi = shapley_values(v, fields)
            residual = sum(phi.values()) - (full - empty)
            for f, p in phi.items():
                yield ctx.row("shapley", p, extra={**extra, "efficiency_residual": residual}, modality=f,
                              method="shapley")
            ctx.artifact("importance", {**phi, "method": "shapley", "value": self.value})

    # -- feature attribution --------------------------------------------------------------------
    def _features(self, model: Any, data: EvalData, ctx: AxisContext, split: str, target: str,
                  continuous: list[str]) -> Iterator[ResultRow]:
        del_field = self.deletion_field or next((f for f in continuous if field_traits(data, f).pictorial),
                                                continuous[0])
        if del_field not in continuous:
            raise ConfigError(f"axis interpretability.importance: deletion_field {del_field!r} is not a continuous "
                              f"input of the model (have: {', '.join(continuous)})")
        gen = torch.Generator().manual_seed(ctx.seed)
        share_sums = dict.fromkeys(continuous, 0.0)
        completeness: list[float] = []
        occl_drop: list[float] = []
        time_drops: dict[str, list[torch.Tensor]] = {}
        segments: dict[str, int] = {}
        curves: dict[str, list[np.ndarray]] = {"attribution": [], "random": []}
        shown = 0
        for chunk in chunks(data, ctx, split, self.batch_size, what="importance: attribution",
                            limit=self.attribution_samples, sharded=False):
            batch = chunk.batch
            y = batch.targets[target].long()
            attr, gap = integrated_gradients(model, batch, continuous, y, self.ig_steps, self.baseline)
            total = sum(a.abs().flatten(1).sum(1) for a in attr.values()).clamp_min(1e-12)
            for f, a in attr.items():
                share_sums[f] += float((a.abs().flatten(1).sum(1) / total).sum())
            summed = sum(a.flatten(1).sum(1) for a in attr.values())
            completeness.extend(((summed - gap).abs() / gap.abs().clamp_min(1e-6)).tolist())
            occ = None
            traits = field_traits(data, del_field)
            if "occlusion" in self.methods and _occludable(traits, batch.inputs[del_field].data.dim() - 1):
                occ = occlusion(model, batch, del_field, y, self.occlusion_patch, self.baseline)
                occl_drop.extend(occ.flatten(1).max(1).values.tolist())
            if "occlusion" in self.methods:
                for f in continuous:
                    time_dims = field_traits(data, f).time_dims
                    if time_dims:
                        steps = batch.inputs[f].data.shape[time_dims[0] + 1]
                        k = segments.setdefault(f, max(1, min(self.time_segments, steps)))
                        time_drops.setdefault(f, []).append(
                            time_occlusion(model, batch, f, y, k, self.baseline, time_dim=time_dims[0] + 1))
            if "deletion" in self.methods:
                units = unit_importance(attr[del_field], channel_dim=traits.channel_dim)
                curves["attribution"].append(deletion_curve(model, batch, del_field, y, units, self.deletion_steps,
                                                            self.baseline, channel_dim=traits.channel_dim))
                random_units = torch.rand(units.shape, generator=gen)
                curves["random"].append(deletion_curve(model, batch, del_field, y, random_units, self.deletion_steps,
                                                            self.baseline, channel_dim=traits.channel_dim))
            if traits.pictorial and _occludable(traits, batch.inputs[del_field].data.dim() - 1):
                for i in range(len(chunk.indices)):
                    if shown >= self.examples:
                        break
                    image = load_image(data, del_field, chunk.samples[i].get(del_field))
                    if image is None:
                        break
                    ig_map = unit_importance(attr[del_field][i:i + 1], channel_dim=traits.channel_dim)[0]
                    ctx.artifact("attention_map", {"method": "integrated_gradients", "field": del_field,
                                                   "sample": str(chunk.batch.ids[i])},
                                 image=heatmaps.overlay(image, ig_map.numpy()), name="integrated_gradients")
                    if occ is not None:
                        ctx.artifact("attention_map", {"method": "occlusion", "field": del_field,
                                                       "sample": str(chunk.batch.ids[i])},
                                     image=heatmaps.overlay(image, occ[i].numpy()), name="occlusion")
                    shown += 1
        n = len(completeness)
        if n == 0:
            return
        if "integrated_gradients" in self.methods:
            for f, s in share_sums.items():
                yield ctx.row("attribution_share", s / n, extra={"samples": n}, modality=f,
                              method="integrated_gradients")
            yield ctx.row("ig_completeness_error", float(np.median(completeness)),
                          extra={"steps": self.ig_steps, "mean": float(np.mean(completeness))},
                          method="integrated_gradients")
        if occl_drop:
            yield ctx.row("occlusion_max_drop", float(np.mean(occl_drop)),
                          extra={"patch": self.occlusion_patch}, modality=del_field, method="occlusion")
        for f, parts in time_drops.items():
            drops = torch.cat(parts).mean(0).tolist()
            extra = {"segments": segments[f], "samples": n, "baseline": self.baseline, "higher_is_better": True}
            for j, d in enumerate(drops):
                yield ctx.row("segment_prob_drop", d, extra=extra, modality=f, method="time_occlusion", segment=j)
            yield ctx.row("segment_importance_spread", max(drops) - min(drops), extra={**extra, "values": drops},
                          modality=f, method="time_occlusion")
        if curves["attribution"]:
            att = np.mean(np.concatenate(curves["attribution"]), axis=0)
            rnd = np.mean(np.concatenate(curves["random"]), axis=0)
            auc_att, auc_rnd = deletion_auc(att), deletion_auc(rnd)
            extra = {"fractions": np.linspace(0, 1, len(att)).tolist(), "attribution_curve": att.tolist(),
                     "random_curve": rnd.tolist(), "samples": n}
            yield ctx.row("deletion_auc", auc_att, extra=extra, modality=del_field, method="integrated_gradients",
                          order="attribution")
            yield ctx.row("deletion_auc", auc_rnd, extra=extra, modality=del_field, method="integrated_gradients",
                          order="random")
            yield ctx.row("deletion_faithful", float(auc_att < auc_rnd), extra={"gap": auc_rnd - auc_att},
                          modality=del_field, method="integrated_gradients")


def _value(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "accuracy":
        return (logits.argmax(-1) == y).double()
    return F.softmax(logits.double(), -1).gather(1, y[:, None])[:, 0]


def _replace(batch: Batch, field: str, data: torch.Tensor) -> Batch:
    mb = batch.inputs[field]
    return Batch({**batch.inputs, field: ModalityBatch(data, mb.mask, mb.meta)}, batch.targets, batch.ids)


def _true_logit(model: Any, batch: Batch, y: torch.Tensor) -> torch.Tensor:
    return model.predict(batch).gather(1, y[:, None])[:, 0]


def baseline_of(x: torch.Tensor, kind: str) -> torch.Tensor:
    """The reference input that stands for "no information" (see the module docs)."""
    if kind == "zeros":
        return torch.zeros_like(x)
    dims = tuple(range(1, x.dim()))
    if kind == "blur" and x.dim() == 4:
        k = max(3, (min(x.shape[-2:]) // 3) | 1)
        out = x
        for _ in range(2):
            out = F.avg_pool2d(out, k, stride=1, padding=k // 2, count_include_pad=False)
        return out
    return x.mean(dim=dims, keepdim=True).expand_as(x).clone()


def integrated_gradients(model: Any, batch: Batch, fields: list[str], y: torch.Tensor, steps: int,
                         baseline: str = "blur") -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """IG attributions of the true-class logit for ``fields`` jointly, along ``x0 + a (x - x0)``.

    Returns the attributions per field (input-shaped) and ``f(x) - f(baseline)``,
    which their sum approximates (completeness).
    """
    xs = {f: batch.inputs[f].data.detach().float() for f in fields}
    x0s = {f: baseline_of(x, baseline) for f, x in xs.items()}
    grads = {f: torch.zeros_like(x) for f, x in xs.items()}
    with torch.enable_grad():
        for k in range(steps):
            alpha = (k + 0.5) / steps
            scaled = {f: (x0s[f] + alpha * (x - x0s[f])).requires_grad_(True) for f, x in xs.items()}
            b = batch
            for f, s in scaled.items():
                b = _replace(b, f, s)
            out = _true_logit(model, b, y).sum()
            got = torch.autograd.grad(out, list(scaled.values()), allow_unused=True)
            for f, g in zip(scaled, got, strict=True):
                if g is not None:
                    grads[f] += g / steps
        with torch.no_grad():
            b0 = batch
            for f, x0 in x0s.items():
                b0 = _replace(b0, f, x0)
            gap = _true_logit(model, batch, y) - _true_logit(model, b0, y)
    return {f: ((xs[f] - x0s[f]) * grads[f]).detach().cpu() for f in fields}, gap.detach().cpu()


@torch.no_grad()
def occlusion(model: Any, batch: Batch, field: str, y: torch.Tensor, patch: int,
              baseline: str = "blur") -> torch.Tensor:
    """Drop of the true-class probability when each ``patch x patch`` square is set to the baseline: ``[B, H, W]``."""
    x = batch.inputs[field].data
    x0 = baseline_of(x.float(), baseline).to(x.dtype)
    h, w = x.shape[-2:]
    base = F.softmax(model.predict(batch), -1).gather(1, y[:, None])[:, 0]
    out = torch.zeros(x.shape[0], h, w)
    for top in range(0, h, patch):
        for left in range(0, w, patch):
            occluded = x.clone()
            occluded[..., top:top + patch, left:left + patch] = x0[..., top:top + patch, left:left + patch]
            p = F.softmax(model.predict(_replace(batch, field, occluded)), -1).gather(1, y[:, None])[:, 0]
            out[:, top:top + patch, left:left + patch] = (base - p).cpu()[:, None, None]
    return out


@torch.no_grad()
def time_occlusion(model: Any, batch: Batch, field: str, y: torch.Tensor, segments: int,
                   baseline: str = "blur", *, time_dim: int = 1) -> torch.Tensor:
    """Drop of the true-class probability when each of ``segments`` equal parts of the time axis
    (``time_dim`` of the batch tensor; each sample's real length from its mask) is set to the baseline:
    ``[B, segments]``."""
    mb = batch.inputs[field]
    x = mb.data
    x0 = baseline_of(x.float(), baseline).to(x.dtype)
    steps = x.shape[time_dim]
    if mb.mask.dim() > 1 and mb.mask.shape[1] == steps:
        lengths = mb.mask.sum(1)
    else:
        lengths = torch.full((x.shape[0],), steps, device=x.device)
    positions = torch.arange(steps, device=x.device)
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[time_dim] = steps
    base = F.softmax(model.predict(batch), -1).gather(1, y[:, None])[:, 0]
    out = torch.zeros(x.shape[0], segments)
    for j in range(segments):
        start, stop = (lengths * j) // segments, (lengths * (j + 1)) // segments
        inside = ((positions[None, :] >= start[:, None]) & (positions[None, :] < stop[:, None])).reshape(shape)
        p = F.softmax(model.predict(_replace(batch, field, torch.where(inside, x0, x))), -1).gather(1, y[:, None])[:, 0]
        out[:, j] = (base - p).cpu()
    return out


def unit_importance(attr: torch.Tensor, *, channel_dim: int | None) -> torch.Tensor:
    """Importance per deletable unit: per position (|attr| summed over the modality's channel dimension,
    ``channel_dim`` of one sample) when it declares one, else per element."""
    if channel_dim is not None and attr.dim() > channel_dim + 1:
        return attr.abs().sum(channel_dim + 1)
    return attr.abs()


def _attributable(traits: ModalityTraits) -> bool:
    """Gradient attribution needs real-valued inputs that may be moved directly."""
    return traits.continuous and traits.perturb_input


def _occludable(traits: ModalityTraits, sample_dims: int) -> bool:
    """Occlusion slides square patches over two space dimensions that close the sample's tensor."""
    return tuple(traits.space_dims) == (sample_dims - 2, sample_dims - 1) and not traits.time_dims


@torch.no_grad()
def deletion_curve(model: Any, batch: Batch, field: str, y: torch.Tensor, importance: torch.Tensor,
                   steps: int, baseline: str = "blur", *, channel_dim: int | None = None) -> np.ndarray:
    """True-class probability after resetting the top ``k/steps`` fraction of units to the baseline,
    ``k = 0..steps``: ``[B, steps+1]``."""
    x = batch.inputs[field].data
    x0 = baseline_of(x.float(), baseline).to(x.dtype)
    b = x.shape[0]
    flat = importance.reshape(b, -1)
    units = flat.shape[1]
    order = flat.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(units).expand(b, units).contiguous())
    rank = rank.reshape(importance.shape).to(x.device)
    out = np.zeros((b, steps + 1))
    for k in range(steps + 1):
        keep = rank >= round(k / steps * units)  # units ranked below the cut-off survive
        if keep.dim() < x.dim():  # per-position units: broadcast over the channel dimension
            keep = keep.unsqueeze(1 if channel_dim is None else channel_dim + 1)
        p = F.softmax(model.predict(_replace(batch, field, torch.where(keep, x, x0))), -1).gather(1, y[:, None])[:, 0]
        out[:, k] = p.double().cpu().numpy()
    return out
