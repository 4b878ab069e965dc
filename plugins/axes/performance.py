"""What the robustness axes measure on a model: accuracy or retrieval recall@1.

A robustness axis compares one number between clean and damaged inputs, so
it needs a single headline metric per model kind: top-1 accuracy for a
``classify`` model, recall@1 in both directions of its embedding pair for an
``embed`` model. The metric math is torchmetrics' (``MulticlassAccuracy``,
``RetrievalRecall``), which also synchronises across ``torchrun`` ranks.
"""

from __future__ import annotations

from typing import Any

import torch

from polymodal.batch import Batch
from polymodal.errors import ConfigError


class PerformanceMeter:
    """Accumulates batches of one condition and reports ``{(metric, direction): value}``."""

    def keys(self) -> list[tuple[str, str | None]]:
        """The ``(metric, direction)`` keys :meth:`compute` returns."""
        raise NotImplementedError

    def update(self, model: Any, batch: Batch) -> None:
        raise NotImplementedError

    def compute(self) -> dict[tuple[str, str | None], float]:
        raise NotImplementedError


class AccuracyMeter(PerformanceMeter):
    """Top-1 accuracy of ``model.predict`` against the model's target."""

    def __init__(self) -> None:
        from torchmetrics.aggregation import SumMetric

        self.correct = SumMetric()
        self.total = SumMetric()

    def keys(self) -> list[tuple[str, str | None]]:
        return [("accuracy", None)]

    def update(self, model: Any, batch: Batch) -> None:
        with torch.no_grad():
            logits = model.predict(batch)
        target = model.target(batch).to(logits.device)
        self.correct.update((logits.argmax(-1) == target).sum().float().cpu())
        self.total.update(torch.tensor(float(target.numel())))

    def compute(self) -> dict[tuple[str, str | None], float]:
        total = float(self.total.compute())
        return {("accuracy", None): float(self.correct.compute()) / total if total else float("nan")}


class RecallMeter(PerformanceMeter):
    """Recall@1 between the two fields of an embedding pair, both directions.

    Sample ``i`` of one field matches sample ``i`` of the other. Embeddings are
    gathered for the whole split first: retrieval ranks against every item.
    Under ``torchrun`` each rank embeds its contiguous shard and the shards are
    gathered in rank order, which is the split's order.
    """

    def __init__(self, pair: tuple[str, str]):
        self.pair = pair
        self.embeddings: dict[str, list[torch.Tensor]] = {f: [] for f in pair}

    def keys(self) -> list[tuple[str, str | None]]:
        a, b = self.pair
        return [("recall@1", f"{a}->{b}"), ("recall@1", f"{b}->{a}")]

    def update(self, model: Any, batch: Batch) -> None:
        with torch.no_grad():
            for f in self.pair:
                self.embeddings[f].append(model.embed(batch, f).float().cpu())

    def compute(self) -> dict[tuple[str, str | None], float]:
        from torchmetrics.retrieval import RetrievalRecall

        from polymodal.collective import all_gather_object, local

        local_emb = {f: torch.cat(self.embeddings[f]) if self.embeddings[f] else torch.zeros(0, 0)
                     for f in self.pair}
        # Every rank gathers every shard (in rank order = split order) and ranks all queries against the
        # whole gallery itself, outside any metric sync: RetrievalRecall's list states (reduce fx None)
        # would skip the gather on a rank without queries and leave the others waiting.
        parts = all_gather_object(local_emb)
        a, b = (torch.cat([p[f] for p in parts if p[f].numel()]) for f in self.pair)
        n = len(a)
        out: dict[tuple[str, str | None], float] = {}
        with local():
            for (_m, name), q, g in zip(self.keys(), (a, b), (b, a), strict=True):
                recall = RetrievalRecall(top_k=1)
                indexes = torch.arange(n).repeat_interleave(n)
                recall.update((q @ g.T).flatten(), torch.eye(n, dtype=torch.bool).flatten(), indexes=indexes)
                out[("recall@1", name)] = float(recall.compute())
        return out


def meter_factory(model: Any, pair: list[str] | None = None) -> Any:
    """A zero-argument constructor of the right meter for ``model``'s capabilities."""
    caps = getattr(model, "capabilities", frozenset())
    if "classify" in caps:
        return AccuracyMeter
    if "embed" in caps:
        fields = tuple(pair) if pair else tuple(model.embed_fields)[:2]
        if len(fields) != 2 or any(f not in model.embed_fields for f in fields):
            raise ConfigError(f"pair: expected two of the model's embedding fields "
                              f"({', '.join(model.embed_fields)}), got {list(fields)}")
        return lambda: RecallMeter((fields[0], fields[1]))
    raise ConfigError(f"model {type(model).__name__} can neither classify nor embed; robustness axes need one")
