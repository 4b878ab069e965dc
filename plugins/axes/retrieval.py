"""``retrieval``: cross-modal retrieval in both directions for every pair of embedded fields.

For a pair ``(a, b)`` (image-text, audio-text, video-text, or two text
fields in different languages, where retrieval finds the translation) every
sample's ``a`` embedding queries all samples' ``b`` embeddings and vice
versa, ranked by cosine similarity. The paired item is the positive; with
``positives = "identical"`` (default) items whose raw text is identical to
the query's pair are positives too, since no model can tell duplicate
captions apart (the embedded ``shapes`` captions repeat).

Figures: recall@K (a positive in the top K, CLIP_benchmark's definition),
mean and median rank of the first positive, mAP and MRR. The ranking
metrics are torchmetrics' retrieval metrics; this module only builds
similarity and relevance matrices. The whole split is one candidate set, so
the axis is not sharded: under several ranks, rank 0 measures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import numpy as np
import torch

from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext, EvalData
from polymodal.results import ResultRow
from polymodal_plugins.axes.params import as_list
from polymodal_plugins.axes.samples import chunks, field_modality, load_image


@attrs.define
class RetrievalAxis:
    """Recall@K, ranks, mAP and MRR both ways for each embedded field pair (module docs)."""

    requires: ClassVar[frozenset[str]] = frozenset({"embed"})

    split: str | None = None
    ks: list[int] = attrs.field(default=(1, 5, 10), converter=as_list)
    #: Field pairs, e.g. ``[["image", "text"], ["text", "text_zh"]]``; default: every pair the model embeds.
    pairs: list[list[str]] | None = None
    positives: str = attrs.field(default="identical", validator=attrs.validators.in_(("identical", "index")))
    examples: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    top: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    batch_size: int = attrs.field(default=64, validator=attrs.validators.ge(1))

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
                for f in wanted:
                    emb[f].append(model.embed(chunk.batch, f).float().cpu())
                    present[f].append(chunk.batch.inputs[f].present.cpu())
                    raw[f].extend(s.get(f) for s in chunk.samples)
                ids.extend(chunk.batch.ids)
        if not ids:
            return
        embs = {f: torch.cat(v) for f, v in emb.items()}
        have = {f: torch.cat(v) for f, v in present.items()}
        for a, b in pairs:
            keep = (have[a] & have[b]).nonzero().flatten()
            if len(keep) < 2:
                continue
            rel = self._relevance(data, raw, a, b, keep.tolist())
            ea, eb = embs[a][keep], embs[b][keep]
            sims = ea @ eb.T
            for q, c, s, r in ((a, b, sims, rel), (b, a, sims.T.contiguous(), rel.T.contiguous())):
                direction = f"{q}->{c}"
                figures = ranking_figures(s, r, self.ks)
                extra = {"queries": int(s.shape[0]), "candidates": int(s.shape[1]), "positives": self.positives,
                         "mean_positives": float(r.sum(1).float().mean())}
                for name, value in figures.items():
                    conditions: dict[str, Any] = {"direction": direction,
                                                  "modality": f"{field_modality(data, q)}-{field_modality(data, c)}"}
                    if name.startswith("recall@"):
                        conditions["k"] = int(name.split("@")[1])
                    yield ctx.row(name, value, extra=extra, **conditions)
                self._examples(data, ctx, direction, q, c, s, r, raw, [ids[i] for i in keep.tolist()], keep.tolist())

    def _relevance(self, data: EvalData, raw: dict[str, list[Any]], a: str, b: str, keep: list[int]) -> torch.Tensor:
        n = len(keep)
        rel = torch.eye(n, dtype=torch.bool)
        if self.positives == "identical":
            for f in (a, b):
                if field_modality(data, f) == "text":
                    texts = [str(raw[f][i]) for i in keep]
                    codes = {t: k for k, t in enumerate(dict.fromkeys(texts))}
                    v = torch.tensor([codes[t] for t in texts])
                    rel |= v[:, None] == v[None, :]
        return rel

    def _examples(self, data: EvalData, ctx: AxisContext, direction: str, q: str, c: str, sims: torch.Tensor,
                  rel: torch.Tensor, raw: dict[str, list[Any]], ids: list[Any], keep: list[int]) -> None:
        for i in range(min(self.examples, sims.shape[0])):
            order = sims[i].argsort(descending=True)[: self.top].tolist()
            items = []
            for j in order:
                item: dict[str, Any] = {"id": str(ids[j]), "score": float(sims[i, j]), "hit": bool(rel[i, j])}
                if field_modality(data, c) == "text":
                    item["text"] = str(raw[c][keep[j]])
                items.append(item)
            record: dict[str, Any] = {"direction": direction, "query_id": str(ids[i]), "items": items}
            image = None
            if field_modality(data, q) == "text":
                record["query"] = str(raw[q][keep[i]])
            elif field_modality(data, q) == "image":
                image = load_image(data, q, raw[q][keep[i]])
            ctx.artifact("retrieval_example", record, image=image, name=f"retrieval-{direction}")


def ranking_figures(sims: torch.Tensor, rel: torch.Tensor, ks: list[int]) -> dict[str, float]:
    """recall@K, mean/median rank of the first positive, mAP and MRR for queries (rows) over candidates."""
    from torchmetrics.retrieval import RetrievalHitRate, RetrievalMAP, RetrievalMRR

    n_q, n_c = sims.shape
    # torchmetrics' reciprocal rank treats items scored <= 0 as irrelevant; cosine scores
    # can be negative, so shift them to be positive (ranking is unchanged).
    preds = (sims.double() - sims.double().min() + 1.0).flatten()
    target = rel.flatten()
    indexes = torch.arange(n_q).repeat_interleave(n_c)
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = float(RetrievalHitRate(top_k=k)(preds, target, indexes=indexes))
    best = sims.masked_fill(~rel, float("-inf")).max(1).values
    ranks = 1 + ((sims > best[:, None]) & ~rel).sum(1)
    out["mean_rank"] = float(ranks.double().mean())
    out["median_rank"] = float(np.median(ranks.numpy()))
    out["map"] = float(RetrievalMAP()(preds, target, indexes=indexes))
    out["mrr"] = float(RetrievalMRR()(preds, target, indexes=indexes))
    return out
