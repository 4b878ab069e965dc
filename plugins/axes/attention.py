"""``interpretability.attention``: what the model attends to, as figures and heatmaps.

Fusion models expose the last batch's attention through ``interpretation()``:

* the cross-modal *attention* fusion gives per-token weights over the other
  modalities' tokens plus a null slot, and the mean attention mass between
  modalities. The axis reports ``modality_attention`` (query modality ->
  key modality, incl. ``null``) and the normalised ``attention_entropy``
  (0 = all mass on one key, 1 = uniform), and saves heatmaps of the mass
  other modalities put on the image's spatial tokens (over the image) and
  token weights over a text field's words;
* the *weighted* fusion gives per-sample modality weights
  (``modality_weight``);
* a fusion with no attention (``concat``) yields one row without a value
  that says so, so a fusion ablation still shows every strategy.

The captioner's ``interpretation()`` holds its per-word spatial attention:
the axis saves one heatmap per generated word over the image and reports
the words' ``attention_entropy``. Models that ``answer`` (hf-vlm) give the
same per-token maps for their replies to the questions (the language
model's attention onto the image tokens, on the image's patch grid), with
the token strings in ``tokens`` and the share of attention that lands on
the image in ``image_mass`` (reported as ``image_attention_mass``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import numpy as np
import torch

from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext, EvalData
from polymodal.results import ResultRow
from polymodal_plugins.axes import heatmaps
from polymodal_plugins.axes.samples import chunks, field_modality, field_traits, load_image, with_raw_texts


def normalised_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Entropy of distributions along the last dim divided by ``log(n)``; rows summing to 0 give NaN."""
    total = weights.sum(-1, keepdim=True)
    p = weights / total.clamp_min(1e-12)
    ent = -(p * p.clamp_min(1e-12).log()).sum(-1) / math.log(max(weights.shape[-1], 2))
    return ent.masked_fill(total.squeeze(-1) <= 0, float("nan"))


def token_words(data: EvalData, field: str, ids: list[int]) -> list[str]:
    """Readable tokens of a text field's ids (the fitted vocabulary's words when known)."""
    modality = getattr(data.collate, "modalities", {}).get(field)
    tokens = getattr(getattr(modality, "vocab", None), "tokens", None)
    return [str(tokens[i]) if tokens is not None and 0 <= i < len(tokens) else f"<{i}>" for i in ids]


@attrs.define
class AttentionAxis:
    """Attention figures and heatmaps of attention fusions and the captioner (module docs)."""

    requires: ClassVar[frozenset[str]] = frozenset()
    requires_any: ClassVar[frozenset[str]] = frozenset({"classify", "caption", "answer"})
    #: Fixed figures (attention mass and entropy read off the model): ``metrics`` is refused at validation.
    metric_feeds: ClassVar[frozenset[str]] = frozenset()

    split: str | None = None
    examples: int = attrs.field(default=4, validator=attrs.validators.ge(0))
    #: Most words of a generated caption drawn as heatmaps.
    words: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    batch_size: int = attrs.field(default=32, validator=attrs.validators.ge(1))

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow]:
        if ctx.rank != 0:  # figures over the whole split: rank 0 measures it
            return
        if not callable(getattr(model, "interpretation", None)):
            yield ctx.row("modality_attention", None, extra={"reason": f"model {type(model).__name__} exposes no "
                                                                      "interpretation()"})
            return
        caps = set(getattr(model, "capabilities", ()))
        split = self.split or ctx.split
        if "answer" in caps and "classify" not in caps:
            yield from self._captioner(model, data, ctx, split, answer=True)
        elif "caption" in caps:
            yield from self._captioner(model, data, ctx, split)
        elif "classify" in caps:
            yield from self._fusion(model, data, ctx, split)
        else:
            raise ConfigError(f"axis interpretability.attention: model {type(model).__name__} neither classifies, "
                              "captions nor answers")

    # -- fusion attention ------------------------------------------------------------------------
    def _fusion(self, model: Any, data: EvalData, ctx: AxisContext, split: str) -> Iterator[ResultRow]:
        fusion = getattr(model, "fusion", None)
        names = list(getattr(fusion, "modalities", None) or model.input_fields)
        mass_sum: torch.Tensor | None = None
        weight_sum: torch.Tensor | None = None
        entropy: dict[str, list[float]] = {m: [] for m in names}
        count = 0
        shown = 0
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="attention", sharded=False):
                model.predict(chunk.batch)
                info = model.interpretation()
                n = len(chunk.indices)
                if "modality_attention" in info:
                    mass = info["modality_attention"].double().cpu()
                    mass_sum = mass.sum(0) if mass_sum is None else mass_sum + mass.sum(0)
                    for m in names:
                        w = info[f"attention.{m}"].double().mean(1)  # [B, T_m, K], averaged over heads
                        ent = normalised_entropy(w)
                        entropy[m].extend(ent[~ent.isnan()].tolist())
                    if shown < self.examples:
                        shown += self._fusion_examples(data, ctx, chunk, info, names, self.examples - shown)
                elif "modality_weights" in info:
                    w = info["modality_weights"].double().cpu()
                    weight_sum = w.sum(0) if weight_sum is None else weight_sum + w.sum(0)
                count += n
        if mass_sum is not None:
            mean = mass_sum / max(count, 1)
            keys = [*names, "null"]
            for i, q in enumerate(names):
                for j, k in enumerate(keys):
                    if k != q:
                        yield ctx.row("modality_attention", float(mean[i, j]), extra={"samples": count},
                                      modality=q, key=k)
                if entropy[q]:
                    yield ctx.row("attention_entropy", float(np.mean(entropy[q])),
                                  extra={"tokens": len(entropy[q])}, modality=q)
        elif weight_sum is not None:
            mean = weight_sum / max(count, 1)
            for i, m in enumerate(names):
                yield ctx.row("modality_weight", float(mean[i]), extra={"samples": count}, modality=m)
            ctx.artifact("importance", {**{m: float(mean[i]) for i, m in enumerate(names)},
                                        "method": "fusion_weights"})
        else:
            yield ctx.row("modality_attention", None,
                          extra={"reason": f"fusion {type(fusion).__name__} exposes no attention or weights"})

    def _fusion_examples(self, data: EvalData, ctx: AxisContext, chunk: Any, info: dict[str, Any],
                         names: list[str], budget: int) -> int:
        images = [m for m in names if field_traits(data, m).pictorial]
        texts = [m for m in names if field_traits(data, m).textual]
        shown = 0
        for b in range(min(budget, len(chunk.indices))):
            sample_id = str(chunk.batch.ids[b])
            for q in names:
                w = info[f"attention.{q}"][b].double().mean(0)  # [T_q, K]
                valid = w.sum(-1) > 0
                if not bool(valid.any()):
                    continue
                per_key = w[valid].mean(0).cpu()
                keys = info[f"keys.{q}"].cpu()
                for target in images:
                    cols = per_key[keys == names.index(target)]
                    side = math.isqrt(len(cols))
                    image = load_image(data, target, chunk.samples[b].get(target))
                    if len(cols) and side * side == len(cols) and image is not None:
                        ctx.artifact("attention_map", {"query": q, "field": target, "sample": sample_id,
                                                       "method": "fusion_attention"},
                                     image=heatmaps.overlay(image, cols.reshape(side, side).numpy()),
                                     name=f"attention-{q}-{target}")
                for target in texts:
                    cols = per_key[keys == names.index(target)]
                    mb = chunk.batch.inputs[target]
                    ids = mb.data[b][mb.mask[b]].tolist()
                    if len(cols) >= len(ids) > 0:
                        ctx.artifact("attention_map", {"query": q, "field": target, "sample": sample_id,
                                                       "tokens": token_words(data, target, ids),
                                                       "weights": [float(x) for x in cols[: len(ids)]],
                                                       "method": "fusion_attention"})
            shown += 1
        return shown

    # -- captioner attention ------------------------------------------------------------------------
    def _captioner(self, model: Any, data: EvalData, ctx: AxisContext, split: str,
                   answer: bool = False) -> Iterator[ResultRow]:
        """Per generated token maps of captions, or (``answer``) of the replies to the data's questions."""
        image_field = getattr(model, "image_field", None)
        entropies: list[float] = []
        masses: list[float] = []
        shown = 0
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="attention: replies" if answer else
                                "attention: captions", sharded=False):
                captions = model.answer(with_raw_texts(data, chunk)) if answer else model.caption(chunk.batch)
                info = model.interpretation()
                masses.extend(float(m) for per in info.get("image_mass", []) for m in per)
                for b, att in enumerate(info.get("attention", [])):
                    maps = att.double().cpu()
                    flat = maps.flatten(1)  # [tokens, grid cells]; a reply may have no tokens
                    ent = normalised_entropy(flat)
                    entropies.extend(ent[~ent.isnan()].tolist())
                    if shown >= self.examples or maps.dim() != 3 or image_field is None:
                        continue
                    image = load_image(data, image_field, chunk.samples[b].get(image_field))
                    if image is None:
                        continue
                    if "image_box" in info:  # the model's grid covers only this part of the image (a centre crop)
                        top, left, bottom, right = info["image_box"][b]
                        h, w = image.shape[:2]
                        image = image[round(top * h):max(round(bottom * h), round(top * h) + 1),
                                      round(left * w):max(round(right * w), round(left * w) + 1)]
                    ids = [int(i) for i in info["token_ids"][b]]
                    if "tokens" in info:  # the model decodes its own tokens (a tokenizer we do not know)
                        words = [str(w).strip() for w in info["tokens"][b]][: maps.shape[0]]
                    elif getattr(model.vocab, "tokens", None) is not None:
                        words = [model.vocab.decode([i]) for i in ids][: maps.shape[0]]
                    else:  # the model was built without the word list: the data's fitted vocabulary has it
                        field = getattr(model, "caption_field", "")
                        specials = model.vocab.special_ids
                        words = ["" if i in specials else w
                                 for i, w in zip(ids, token_words(data, field, ids), strict=True)][: maps.shape[0]]
                    keep = [k for k, w in enumerate(words) if w][: self.words]
                    if not keep:
                        continue
                    strip = heatmaps.strip([heatmaps.overlay(image, maps[k].numpy(), scale=3) for k in keep])
                    ctx.artifact("attention_map", {"field": image_field, "sample": str(chunk.batch.ids[b]),
                                                   "tokens": [words[k] for k in keep], "caption": captions[b],
                                                   "method": info.get("method", "captioner_attention")},
                                 image=strip, name="answer-attention" if answer else "caption-attention")
                    shown += 1
        modality = field_modality(data, image_field) if image_field else None
        if entropies:
            yield ctx.row("attention_entropy", float(np.mean(entropies)), extra={"words": len(entropies)},
                          modality=modality)
        if masses:
            yield ctx.row("image_attention_mass", float(np.mean(masses)), extra={"tokens": len(masses)},
                          modality=modality)
