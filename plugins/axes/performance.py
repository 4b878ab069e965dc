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
from polymodal.stats import consistent_per_sample


def _gathered(local: list[float]) -> list[float]:
    """Per-sample scores of every rank's contiguous shard, joined in split order (a collective)."""
    from polymodal.evaluation import active, all_gather_object

    return [x for part in all_gather_object(local) for x in part] if active() else local


class PerformanceMeter:
    """Accumulates batches of one condition and reports ``{(metric, direction): value}``.

    After :meth:`compute`, ``samples`` holds the per-sample scores behind each
    value that is a mean over samples (split order, every rank's shard), for
    the leaderboard's intervals and paired tests; corpus-level values have none.
    """

    samples: dict[tuple[str, str | None], list[float]]
    #: Every meter reports a headline score (accuracy, recall, word accuracy): higher is better.
    higher_is_better: bool = True

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
        self.hits: list[float] = []
        self.samples = {}

    def keys(self) -> list[tuple[str, str | None]]:
        return [("accuracy", None)]

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        with torch.no_grad():
            logits = model.predict(batch)
        target = model.target(batch).to(logits.device)
        hit = (logits.argmax(-1) == target).float().cpu()
        self.correct.update(hit.sum())
        self.total.update(torch.tensor(float(target.numel())))
        self.hits += hit.reshape(-1).tolist()

    def compute(self) -> dict[tuple[str, str | None], float]:
        total = float(self.total.compute())
        value = float(self.correct.compute()) / total if total else float("nan")
        scores = _gathered(self.hits)
        matched = consistent_per_sample(scores, value) if total else None
        self.samples = {("accuracy", None): matched} if matched is not None else {}
        return {("accuracy", None): value}


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
        self.samples = {}

    def keys(self) -> list[tuple[str, str | None]]:
        a, b = self.pair
        return [("recall@1", f"{a}->{b}"), ("recall@1", f"{b}->{a}")]

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        with torch.no_grad():
            for f in self.pair:
                self.embeddings[f].append(model.embed(batch, f).float().cpu())

    def compute(self) -> dict[tuple[str, str | None], float]:
        from torchmetrics.retrieval import RetrievalRecall

        from polymodal.evaluation import all_gather_object, local

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
                sim = q @ g.T
                recall.update(sim.flatten(), torch.eye(n, dtype=torch.bool).flatten(), indexes=indexes)
                out[("recall@1", name)] = float(recall.compute())
                # A query scores 1 when no other item scores above its own (every rank holds all queries).
                hits = ((sim > sim.diagonal()[:, None]).sum(1) == 0).float().tolist() if n else []
                scores = consistent_per_sample(hits, out[("recall@1", name)])
                if scores is not None:
                    self.samples[("recall@1", name)] = scores
        return out


class WordAccuracyMeter(PerformanceMeter):
    """``1 - WER`` of ``model.transcribe`` against each raw sample's reference transcript."""

    def __init__(self, references_field: str):
        from polymodal_plugins.metrics.asr import WordErrorRate

        self.references_field = references_field
        self.wer = WordErrorRate(normalize=True)
        self.samples = {}  # corpus-level WER: not a mean over samples

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


class AnswerAccuracyMeter(PerformanceMeter):
    """QA accuracy of a model with the ``answer`` capability, a mean over questions.

    Named ``qa_accuracy``: the leaderboard reads the direction of an undeclared
    metric from its name, and "answer" holds "wer".

    Samples with ``answers`` (human answers) score the official VQAv2 accuracy
    of ``model.answer``; samples with ``options`` and ``answer`` score 1 when
    ``model.answer_choice`` picks the right option (an extraction failure is 0).
    """

    def __init__(self) -> None:
        self.scores: list[float] = []
        self.samples = {}

    def keys(self) -> list[tuple[str, str | None]]:
        return [("qa_accuracy", None)]

    def update(self, model: Any, batch: Batch, samples: list[dict[str, Any]] | None = None) -> None:
        from polymodal_plugins.metrics.vqa_scores import vqa_accuracy

        if not samples:
            raise ConfigError("qa accuracy needs the raw samples (their answers)")
        with torch.no_grad():
            if all("options" in s and "answer" in s for s in samples):
                picked, _ = model.answer_choice(batch, [list(s["options"]) for s in samples])
                self.scores += [float(p is not None and p == int(s["answer"])) for p, s in zip(picked, samples)]
            elif all("answers" in s for s in samples):
                replies = model.answer(batch)
                self.scores += [vqa_accuracy(r, [str(a) for a in s["answers"]]) for r, s in zip(replies, samples)]
            else:
                raise ConfigError("qa accuracy needs every sample to carry 'answers' or 'options' and 'answer'")

    def compute(self) -> dict[tuple[str, str | None], float]:
        scores = _gathered(self.scores)
        value = sum(scores) / len(scores) if scores else float("nan")
        self.samples = {("qa_accuracy", None): scores} if scores else {}
        return {("qa_accuracy", None): value}


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
        from polymodal_plugins.axes.samples import transcript_field

        refs = transcript_field(model)
        return lambda: WordAccuracyMeter(refs)
    if "answer" in caps:
        return AnswerAccuracyMeter
    raise ConfigError(f"model {type(model).__name__} can neither classify, embed nor transcribe; "
                      "robustness axes need one")
