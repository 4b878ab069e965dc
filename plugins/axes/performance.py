"""What the robustness axes measure on a model: accuracy, retrieval recall@1, word accuracy.

A robustness axis compares one number between clean and damaged inputs, so
it needs a single headline metric per model kind: top-1 accuracy for a
``classify`` model, recall@1 in both directions of its embedding pair for an
``embed`` model, word accuracy (``1 - WER``, corpus-level, equal to jiwer
after the documented normalisation) for a ``transcribe`` model. All are
higher-is-better, so the curve summaries read the same for every kind and a
transcriber's ``corruption_error`` is its mean WER. The metric math is torchmetrics' (``MulticlassAccuracy``,
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

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        """One batch; ``samples`` are the raw samples it was collated from (references live there)."""
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

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
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

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        with torch.no_grad():
            for f in self.pair:
                self.embeddings[f].append(model.embed(batch, f).float().cpu())

    def compute(self) -> dict[tuple[str, str | None], float]:
        from torchmetrics.retrieval import RetrievalRecall

        from polymodal.collective import active, all_gather_object

        local = {f: torch.cat(self.embeddings[f]) if self.embeddings[f] else torch.zeros(0, 0)
                 for f in self.pair}
        parts = all_gather_object(local)
        a, b = (torch.cat([p[f] for p in parts if p[f].numel()]) for f in self.pair)
        n = len(a)
        # Every rank ranks the whole gallery for its own queries only (its shard, at its offset in
        # the split); RetrievalRecall's cat states then join the queries of all ranks. Ranking all
        # queries on every rank would hand the metric each query world_size times.
        rank = 0
        if active():
            import torch.distributed as dist

            rank = dist.get_rank()
        start = sum(len(p[self.pair[0]]) for p in parts[:rank])
        stop = start + len(local[self.pair[0]])
        out: dict[tuple[str, str | None], float] = {}
        for (_m, name), q, g in zip(self.keys(), (a, b), (b, a), strict=True):
            sim = q[start:stop] @ g.T
            recall = RetrievalRecall(top_k=1)
            indexes = torch.arange(start, stop).repeat_interleave(n)
            relevant = torch.zeros(stop - start, n, dtype=torch.bool)
            relevant[torch.arange(stop - start), torch.arange(start, stop)] = True
            recall.update(sim.flatten(), relevant.flatten(), indexes=indexes)
            out[("recall@1", name)] = float(recall.compute())
        return out


class WordAccuracyMeter(PerformanceMeter):
    """``1 - WER`` of ``model.transcribe`` against each raw sample's reference transcript."""

    def __init__(self, references_field: str):
        from polymodal_plugins.metrics.asr import WordErrorRate

        self.references_field = references_field
        self.wer = WordErrorRate(normalize=True)

    def keys(self) -> list[tuple[str, str | None]]:
        return [("word_accuracy", None)]

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        if samples is None:
            raise ConfigError("word accuracy needs the raw samples (their reference transcripts)")
        refs = [s.get(self.references_field) for s in samples]
        bad = next((s.get("id") for s, r in zip(samples, refs) if not isinstance(r, str)), None)
        if bad is not None or len(refs) != len(samples):
            raise ConfigError(f"sample {bad!r} has no reference transcript field {self.references_field!r}")
        with torch.no_grad():
            self.wer.update(model.transcribe(batch), refs)

    def compute(self) -> dict[tuple[str, str | None], float]:
        return {("word_accuracy", None): 1.0 - float(self.wer.compute())}


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
    if "transcribe" in caps:
        refs = getattr(model, "text_field", None) or "text"
        return lambda: WordAccuracyMeter(refs)
    raise ConfigError(f"model {type(model).__name__} can neither classify, embed nor transcribe; "
                      "robustness axes need one")
