"""``retrieval``: cross-modal retrieval in both directions for every pair of embedded fields.

For a pair ``(a, b)`` (image-text, audio-text, video-text, or two text
fields in different languages, where retrieval finds the translation) every
sample's ``a`` embedding queries all samples' ``b`` embeddings and vice
versa, ranked by cosine similarity. The paired item is the positive; with
``positives = "identical"`` (default) items whose raw text is identical to
the query's pair are positives too, since no model can tell duplicate
captions apart (the embedded ``shapes`` captions repeat).

Identical texts are merged into one candidate, which then has several
positives on the other side: exactly CLIP_benchmark's image-with-several-
captions setting, so the figures come from the ``retrieval`` metric
(recall@K, mean/median rank of the best positive, MRR, mAP), built through
the registry: a metric another plugin ``replaces`` is the one used, and
``metrics = [...]`` chooses others. A chosen metric declares ``embed`` in its
spec's capabilities, is built with ``ks`` and updated once per pair with
``(gallery, gallery_ids, queries, query_gallery_ids)`` -- the group side
plays CLIP_benchmark's images -- and its ``compute()`` keys
``text_to_image_<figure>`` / ``image_to_text_<figure>`` become rows per
direction (other dict keys go to the rows' ``extra``; a scalar is one row
for the pair, direction ``a<->b``). A metric offering ``compute_details()``
(figures, per-query scores) gives the rows their per-sample scores. Each
row's direction is what the metric declares (``declared_direction``). The
whole split is one candidate set, so the axis is not sharded: under several
ranks, rank 0 measures, with metric syncs kept local.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import torch

from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext, EvalData, declared_direction
from polymodal.results import ResultRow
from polymodal_plugins.axes.params import as_list
from polymodal_plugins.axes.named_metrics import build_named
from polymodal_plugins.axes.samples import chunks, field_modality, field_traits, load_image, with_raw_texts

#: ``compute()`` key prefixes of a retrieval metric: queries from the other side, queries from the group side.
PREFIXES = ("text_to_image_", "image_to_text_")


@attrs.define
class RetrievalAxis:
    """Recall@K, ranks, mAP and MRR both ways for each embedded field pair (module docs)."""

    requires: ClassVar[frozenset[str]] = frozenset({"embed"})
    #: A suite may choose metrics whose spec declares ``embed`` (the update contract is in the module docs).
    metric_feeds: ClassVar[frozenset[str]] = frozenset({"embed"})

    split: str | None = None
    ks: list[int] = attrs.field(default=(1, 5, 10), converter=as_list)
    #: Field pairs, e.g. ``[["image", "text"], ["text", "text_zh"]]``; default: every pair the model embeds.
    pairs: list[list[str]] | None = None
    positives: str = attrs.field(default="identical", validator=attrs.validators.in_(("identical", "index")))
    examples: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    top: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    batch_size: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    #: Metrics by registry name; default: ``retrieval`` (built by name, so a replacement is used).
    metrics: list[str] = attrs.field(default=("retrieval",), converter=as_list)

    def __attrs_post_init__(self) -> None:
        if not self.ks or any(not isinstance(k, int) or k < 1 for k in self.ks):
            raise ConfigError(f"axis retrieval: ks must be positive integers, got {self.ks!r}")
        for p in self.pairs or []:
            if len(p) != 2 or p[0] == p[1]:
                raise ConfigError(f"axis retrieval: pairs: each pair names two different fields, got {p!r}")

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow]:
        if ctx.rank != 0:
            return
        fields = list(model.embed_fields)
        pairs = [tuple(p) for p in self.pairs] if self.pairs else [
            (a, b) for i, a in enumerate(fields) for b in fields[i + 1:]]
        for a, b in pairs:
            for f in (a, b):
                if f not in fields:
                    raise ConfigError(f"axis retrieval: pairs: model {type(model).__name__} does not embed field "
                                      f"{f!r} (it embeds: {', '.join(fields) or 'nothing'})")
        if not pairs:
            raise ConfigError(f"axis retrieval: model {type(model).__name__} embeds fewer than two fields "
                              f"({', '.join(fields) or 'none'}); nothing to retrieve")
        wanted = sorted({f for p in pairs for f in p})
        split = self.split or ctx.split
        emb: dict[str, list[torch.Tensor]] = {f: [] for f in wanted}
        present: dict[str, list[torch.Tensor]] = {f: [] for f in wanted}
        raw: dict[str, list[Any]] = {f: [] for f in wanted}
        ids: list[Any] = []
        with torch.no_grad():
            for chunk in chunks(data, ctx, split, self.batch_size, what="retrieval: embedding", sharded=False):
                batch = with_raw_texts(data, chunk)  # models with their own tokenizer (hf-clip) read the strings
                for f in wanted:
                    emb[f].append(model.embed(batch, f).float().cpu())
                    present[f].append(chunk.batch.inputs[f].present.cpu())
                    raw[f].extend(s.get(f) for s in chunk.samples)
                ids.extend(chunk.batch.ids)
        if not ids:
            return
        embs = {f: torch.cat(v) for f, v in emb.items()}
        have = {f: torch.cat(v) for f, v in present.items()}
        for a, b in pairs:
            keep = (have[a] & have[b]).nonzero().flatten().tolist()
            if len(keep) < 2:
                continue
            group_side = self._group_side(data, a, b)
            other = a if group_side == b else b
            groups = self._groups(data, raw, group_side, keep)
            first: dict[int, int] = {}
            for row, g in enumerate(groups):
                first.setdefault(g, row)
            gallery = embs[group_side][[keep[first[g]] for g in range(len(first))]]
            queries = embs[other][keep]
            query_ids = {other: [ids[i] for i in keep], group_side: [ids[keep[first[g]]] for g in range(len(first))]}
            extra = {"positives": self.positives, "duplicates_merged": len(keep) - len(first)}
            modality = {q: f"{field_modality(data, q)}-{field_modality(data, c)}"
                        for q, c in ((a, b), (b, a))}
            with ctx.local():  # rank 0 alone measures: no metric sync with ranks that left
                for name, metric in build_named(ctx, self.metrics, "embed", ks=tuple(self.ks)) or ():
                    # The group side plays CLIP_benchmark's images (one image, several captions):
                    # "text_to_image" is other -> group and "image_to_text" is group -> other.
                    metric.update(gallery, torch.arange(len(first)), queries, torch.tensor(groups))
                    details = getattr(metric, "compute_details", None)
                    value, per_query = details() if callable(details) else (metric.compute(), {})
                    if not isinstance(value, dict):
                        yield ctx.row(name, float(value), extra=extra, direction=f"{a}<->{b}",
                                      modality=f"{field_modality(data, a)}-{field_modality(data, b)}",
                                      higher_is_better=declared_direction(metric))
                        continue
                    values = {k: float(v) for k, v in value.items()}
                    notes = {k: v for k, v in values.items() if not k.startswith(PREFIXES)}
                    for q, c, prefix in ((other, group_side, PREFIXES[0]), (group_side, other, PREFIXES[1])):
                        row_extra = {**extra, **notes, "queries": len(query_ids[q]), "candidates": len(query_ids[c])}
                        for key, v in values.items():
                            if not key.startswith(prefix):
                                continue
                            figure = key[len(prefix):]
                            conditions: dict[str, Any] = {"direction": f"{q}->{c}", "modality": modality[q]}
                            if figure.startswith("recall@"):
                                conditions["k"] = int(figure.split("@")[1])
                            scores = per_query.get(key)
                            has = scores is not None and len(scores) == len(query_ids[q])
                            yield ctx.row(figure, v, extra=row_extra, **conditions,
                                          higher_is_better=declared_direction(metric, key),
                                          per_sample=scores if has else None,
                                          sample_ids=query_ids[q] if has else None)
            code = torch.tensor(groups)
            rel = code[:, None] == code[None, :]
            sims = embs[a][keep] @ embs[b][keep].T
            sample_ids = [ids[i] for i in keep]
            self._examples(data, ctx, f"{a}->{b}", a, b, sims, rel, raw, sample_ids, keep)
            self._examples(data, ctx, f"{b}->{a}", b, a, sims.T.contiguous(), rel, raw, sample_ids, keep)

    def _group_side(self, data: EvalData, a: str, b: str) -> str:
        """The side whose identical items merge into one candidate (a text field, ``b`` first)."""
        for f in (b, a):
            if self.positives == "identical" and field_traits(data, f).textual:
                return f
        return b

    def _groups(self, data: EvalData, raw: dict[str, list[Any]], side: str, keep: list[int]) -> list[int]:
        """Group of each kept sample: identical texts share one (``identical``), else one per sample."""
        if self.positives != "identical" or not field_traits(data, side).textual:
            return list(range(len(keep)))
        codes: dict[str, int] = {}
        return [codes.setdefault(str(raw[side][i]), len(codes)) for i in keep]

    def _examples(self, data: EvalData, ctx: AxisContext, direction: str, q: str, c: str, sims: torch.Tensor,
                  rel: torch.Tensor, raw: dict[str, list[Any]], ids: list[Any], keep: list[int]) -> None:
        for i in range(min(self.examples, sims.shape[0])):
            order = sims[i].argsort(descending=True)[: self.top].tolist()
            items = []
            for j in order:
                item: dict[str, Any] = {"id": str(ids[j]), "score": float(sims[i, j]), "hit": bool(rel[i, j])}
                if field_traits(data, c).textual:
                    item["text"] = str(raw[c][keep[j]])
                items.append(item)
            record: dict[str, Any] = {"direction": direction, "query_id": str(ids[i]), "items": items}
            image = None
            if field_traits(data, q).textual:
                record["query"] = str(raw[q][keep[i]])
            elif field_traits(data, q).pictorial:
                image = load_image(data, q, raw[q][keep[i]])
            ctx.artifact("retrieval_example", record, image=image, name=f"retrieval-{direction}")
