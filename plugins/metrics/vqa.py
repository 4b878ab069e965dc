"""VQA accuracy as a torchmetrics ``Metric``; the arithmetic is the torch-free kernel
:func:`~polymodal_plugins.metrics.vqa_scores.vqa_accuracy`, so in-run numbers equal
``polymodal score vqa`` and the official VQAv2 evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric

from polymodal_plugins.metrics.vqa_scores import vqa_accuracy


class VQAAccuracy(Metric):
    """``update(predictions, human_answers)``: one answer string and its list of human answers per question.

    State is a sum and a count, so batches and processes add up to the mean over all questions.
    """

    is_differentiable = False
    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.last_scores: list[float] = []

    def update(self, predictions: Sequence[str], human_answers: Sequence[Sequence[str]]) -> None:
        if len(predictions) != len(human_answers):
            raise ValueError(f"VQAAccuracy: {len(predictions)} predictions but {len(human_answers)} answer lists")
        self.last_scores = [vqa_accuracy(p, a) for p, a in zip(predictions, human_answers)]
        self.total += sum(self.last_scores)
        self.count += len(self.last_scores)

    def compute(self) -> torch.Tensor:
        if int(self.count) == 0:
            raise ValueError("VQAAccuracy: no questions seen")
        return self.total / self.count


class ChoiceAccuracy(Metric):
    """``update(replies, options, answers)``: free-text replies, each question's options and the right index.

    The letter is extracted with :func:`~polymodal_plugins.metrics.choice_scores.extract_choice`;
    ``compute()`` is the accuracy (failures count as wrong) and ``extraction_failures`` is kept
    as a state so the report can show it.
    """

    is_differentiable = False
    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("extraction_failures", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.last_scores: list[float] = []

    def update(self, replies: Sequence[str], options: Sequence[Sequence[str]], answers: Sequence[int]) -> None:
        from polymodal_plugins.metrics.choice_scores import extract_choice

        picked = [extract_choice(r, o) for r, o in zip(replies, options, strict=True)]
        self.last_scores = [float(p is not None and p == a) for p, a in zip(picked, answers, strict=True)]
        self.correct += int(sum(self.last_scores))
        self.count += len(picked)
        self.extraction_failures += sum(p is None for p in picked)

    def compute(self) -> torch.Tensor:
        if int(self.count) == 0:
            raise ValueError("ChoiceAccuracy: no questions seen")
        return self.correct.double() / self.count
