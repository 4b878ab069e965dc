"""``zero-shot``: classify with class embeddings built from prompt templates, no classifier head.

Each class name fills every template (``"a picture of a {}"`` ...); the
prompts are embedded by the model's text field, each L2-normalised, averaged
per class and renormalised (CLIP's prompt ensembling). A sample is assigned
the class whose embedding is most similar to the sample's embedding of the
query field (image, audio, video).

On ``shapes`` the ``zeroshot`` split holds only (shape, colour) combinations
that never occur in training, with target ``combo``: the model must compose
attributes it learnt separately. ``candidates = ["all", "split"]`` measures
against every class of the target and against only the classes present in
the split (the unseen ones). Figures: top-1/top-K accuracy and mean
per-class recall (balanced accuracy over the classes the split contains),
computed with torchmetrics. ``metrics = [...]`` chooses metrics by registry
name instead: each spec declares ``classify`` and is fed exactly as the task
axis feeds it (built with ``num_classes``/``top_k``, updated with the
class-similarity scores and the targets), so a replacement is the one used.

A template fills the class name at ``{}``; it may instead (or also) name
attributes of the class, ``"a {shape} that is {color}"``, when the dataset
describes its classes with ``class_attributes(target)`` (``shapes`` does, for
every target). That is how a suite asks for phrasings whose word order never
occurs in training captions, not just new words around the class name.
"""

from __future__ import annotations

from collections.abc import Iterator
from string import Formatter
from typing import Any, ClassVar

import attrs
import torch
import torch.nn.functional as F

from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext, EvalData, declared_direction
from polymodal.results import ResultRow
from polymodal.stats import consistent_per_sample
from polymodal_plugins.axes.named_metrics import build_named, figures as metric_figures
from polymodal_plugins.axes.params import as_list
from polymodal_plugins.axes.samples import (base_dataset, chunks, field_batch, field_modality, field_traits, split_dataset,
                                           topk_hits, with_raw_texts)

DEFAULT_TEMPLATES = ("a picture of a {}", "a {}", "there is a {}", "the {}")


def template_fields(template: str) -> set[str]:
    """Placeholders of a template: ``""`` for ``{}`` (the class name), else attribute names."""
    try:
        return {field for _, field, _, _ in Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise ConfigError(f"axis zero-shot: template {template!r} is not a valid format string: {exc}") from exc


def fill_prompts(names: list[str], templates: list[str], attributes: list[dict[str, str]] | None = None) -> list[str]:
    """Every template filled for every class (class-major), ``{}`` = class name, ``{attr}`` = its attribute."""
    if attributes is not None and len(attributes) != len(names):
        raise ConfigError(f"axis zero-shot: {len(attributes)} class attribute sets for {len(names)} classes")
    prompts = []
    for i, name in enumerate(names):
        known = attributes[i] if attributes is not None else {}
        for template in templates:
            missing = sorted(template_fields(template) - {""} - set(known))
            if missing:
                have = ", ".join(sorted(known)) or "none: the dataset has no class_attributes() for this target"
                raise ConfigError(f"axis zero-shot: template {template!r} names {', '.join(missing)}, but class "
                                  f"{name!r} has attributes {have}")
            prompts.append(template.format(name, **known))
    return prompts


def class_embeddings(model: Any, data: EvalData, text_field: str, names: list[str], templates: list[str],
                     device: torch.device, attributes: list[dict[str, str]] | None = None) -> torch.Tensor:
    """``[C, D]``: per class, the renormalised mean of its L2-normalised template embeddings."""
    prompts = fill_prompts(names, templates, attributes)
    with torch.no_grad():
        emb = model.embed(field_batch(data, text_field, prompts, device), text_field).float()
    emb = F.normalize(emb, dim=-1).reshape(len(names), len(templates), -1).mean(1)
    return F.normalize(emb, dim=-1)


def classification_figures(logits: torch.Tensor, y: torch.Tensor, ks: list[int]) -> dict[str, float]:
    """top-K accuracy and mean recall over the classes that occur in ``y`` (the metrics plugin's report)."""
    from polymodal_plugins.metrics.classification import ClassificationReport

    report = ClassificationReport(num_classes=int(logits.shape[1]), top_k=tuple(sorted({1, *ks})))
    report.update(logits, y)
    out = report.compute()
    figures = {"accuracy" if k == 1 else f"top{k}_accuracy": float(out[f"accuracy_top{k}"]) for k in report.top_k}
    figures["mean_per_class_recall"] = float(out["balanced_accuracy"])
    return figures


@attrs.define
class ZeroShotAxis:
    """Prompt-ensemble zero-shot classification (see module docs)."""

    requires: ClassVar[frozenset[str]] = frozenset({"embed"})
    #: A suite may choose classification metrics by name (fed like the task axis feeds them).
    metric_feeds: ClassVar[frozenset[str]] = frozenset({"classify"})

    split: str = "zeroshot"
    target: str = "combo"
    #: Field whose embedding is classified (default: the first embedded non-text field).
    field: str | None = None
    #: Text field that embeds the prompts (default: the first embedded text field).
    text_field: str | None = None
    templates: list[str] = attrs.field(default=DEFAULT_TEMPLATES, converter=as_list)
    candidates: list[str] = attrs.field(default=("all", "split"), converter=as_list)
    ks: list[int] = attrs.field(default=(1, 5), converter=as_list)
    batch_size: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    #: Metrics by registry name (``classify`` specs); None: top-K accuracy and mean per-class recall.
    metrics: list[str] | None = attrs.field(default=None, converter=attrs.converters.optional(as_list))

    def __attrs_post_init__(self) -> None:
        if not self.templates or any(not template_fields(t) or any(f.isdigit() for f in template_fields(t))
                                     for t in self.templates):
            raise ConfigError(f"axis zero-shot: templates must each contain '{{}}' for the class name or named "
                              f"class attributes such as '{{color}}', got {self.templates!r}")
        bad = [c for c in self.candidates if c not in ("all", "split")]
        if bad or not self.candidates:
            raise ConfigError(f"axis zero-shot: candidates: choose from 'all', 'split', got {self.candidates!r}")

    def _fields(self, model: Any, data: EvalData) -> tuple[str, str]:
        fields = list(model.embed_fields)
        texts = [f for f in fields if field_traits(data, f).textual]
        others = [f for f in fields if f not in texts]
        text_field = self.text_field or (texts[0] if texts else None)
        field = self.field or (others[0] if others else None)
        for name, value, pool in (("text_field", text_field, texts), ("field", field, fields)):
            if value is None or value not in pool:
                raise ConfigError(f"axis zero-shot: {name}: model {type(model).__name__} must embed "
                                  f"{'a text' if name == 'text_field' else 'a query'} field {value or ''} "
                                  f"(it embeds: {', '.join(fields) or 'nothing'})")
        return field, text_field

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow]:
        field, text_field = self._fields(model, data)
        ds = base_dataset(split_dataset(data, self.split, ctx.axis))
        names = list(getattr(ds, "class_names", {}).get(self.target) or [])
        if not names:
            raise ConfigError(f"axis zero-shot: target {self.target!r}: dataset split {self.split!r} has no class "
                              f"names for it (class targets: {', '.join(getattr(ds, 'class_names', {})) or 'none'})")
        attributes = None
        if any(template_fields(t) - {""} for t in self.templates):
            describe = getattr(ds, "class_attributes", None)
            attributes = describe(self.target) if callable(describe) else None
        classes = class_embeddings(model, data, text_field, names, self.templates, ctx.device, attributes)
        scores, labels = [], []
        with torch.no_grad():
            # Each rank scores its shard; the figures come from everybody's scores (gathered below,
            # on every rank, even one whose shard is empty), so all ranks take the same path.
            for chunk in chunks(data, ctx, self.split, self.batch_size, what="zero-shot"):
                if self.target not in chunk.batch.targets:
                    raise ConfigError(f"axis zero-shot: target {self.target!r} is not among the batch targets "
                                      f"({', '.join(chunk.batch.targets)})")
                present = chunk.batch.inputs[field].present
                emb = F.normalize(model.embed(with_raw_texts(data, chunk), field).float(), dim=-1)
                scores.append((emb @ classes.T)[present].cpu())
                labels.append(chunk.batch.targets[self.target].long()[present].cpu())
        parts = ctx.all_gather_object((torch.cat(scores) if scores else torch.zeros(0, len(names)),
                                       torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)))
        scores, labels = [p[0] for p in parts], [p[1] for p in parts]
        if sum(len(y) for y in labels) == 0:
            return
        logits, y = torch.cat(scores), torch.cat(labels)
        occurring = sorted(set(y.tolist()))
        for cand in self.candidates:
            if cand == "all":
                lg, yy = logits, y
            else:
                remap = {c: i for i, c in enumerate(occurring)}
                lg, yy = logits[:, occurring], torch.tensor([remap[v] for v in y.tolist()])
            extra = {"classes": lg.shape[1], "samples": len(yy), "templates": self.templates, "split": self.split,
                     "chance_top1": 1.0 / lg.shape[1]}
            hits = topk_hits(lg, yy, {1, *self.ks})
            per_sample = {"accuracy" if k == 1 else f"top{k}_accuracy": v for k, v in hits.items()}
            top_k = tuple(sorted({1, *self.ks}))
            directions: dict[str, bool | None] = {}
            with ctx.local():  # every rank holds all scores now: no metric sync
                named = build_named(ctx, self.metrics, "classify", num_classes=int(lg.shape[1]), top_k=top_k)
                if named is None:
                    figures = classification_figures(lg, yy, self.ks)
                    directions = dict.fromkeys(figures, True)  # accuracies and per-class recall
                else:
                    figures = {}
                    for name, built in named:
                        built.update(lg, yy)
                        got = metric_figures(built.compute(), name)
                        figures.update(got)
                        directions.update(dict.fromkeys(got, declared_direction(built)))
            for metric, value in figures.items():
                scores = consistent_per_sample(per_sample.get(metric), value)
                yield ctx.row(metric, value, extra=extra, target=self.target, candidates=cand,
                              modality=field_modality(data, field), split=self.split, per_sample=scores or None,
                              higher_is_better=directions.get(metric))
