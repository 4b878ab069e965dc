"""Classification / video-understanding metrics from a confusion matrix.

Everything derives from one ``[C, C]`` count matrix (a ``sum`` state, so
batches and processes add up exactly) plus top-k hit counts: accuracy
(top-k), macro F1, balanced accuracy and the matrix itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric


class ClassificationReport(Metric):
    """Top-k accuracy, macro F1, balanced accuracy and the confusion matrix.

    ``update(logits_or_probs [B, C], targets [B])``. Macro F1 and balanced
    accuracy average over classes that occur in the targets or predictions
    (a class never seen contributes nothing rather than a 0 that would depend on
    the label set size).
    """

    is_differentiable = False
    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int, top_k: Sequence[int] = (1, 5), **kwargs):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError("num_classes must be at least 1")
        self.num_classes = num_classes
        self.top_k = tuple(k for k in top_k if k <= num_classes) or (1,)
        self.add_state("confusion", default=torch.zeros(num_classes, num_classes, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("topk_hits", default=torch.zeros(len(self.top_k), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        if scores.ndim != 2 or scores.shape[1] != self.num_classes:
            raise ValueError(f"scores must be [B, {self.num_classes}], got {tuple(scores.shape)}")
        targets = targets.reshape(-1).long()
        if targets.shape[0] != scores.shape[0]:
            raise ValueError(f"{scores.shape[0]} score rows but {targets.shape[0]} targets")
        if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= self.num_classes):
            raise ValueError(f"targets must be in [0, {self.num_classes}), got {int(targets.min())}..{int(targets.max())}")
        pred = scores.argmax(dim=1)
        self.confusion += torch.bincount(targets * self.num_classes + pred, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes)
        top = scores.topk(max(self.top_k), dim=1).indices
        for i, k in enumerate(self.top_k):
            self.topk_hits[i] += (top[:, :k] == targets[:, None]).any(dim=1).sum()
        self.total += len(targets)

    def compute(self) -> dict[str, torch.Tensor]:
        cm = self.confusion.double()
        tp = cm.diag()
        support = cm.sum(dim=1)
        predicted = cm.sum(dim=0)
        present = (support + predicted) > 0
        f1 = torch.where(present, 2 * tp / (support + predicted).clamp(min=1), torch.zeros_like(tp))
        recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
        total = max(int(self.total), 1)
        out = {f"accuracy_top{k}": self.topk_hits[i].double() / total for i, k in enumerate(self.top_k)}
        out["accuracy"] = out["accuracy_top1"] if 1 in self.top_k else tp.sum() / total
        out["macro_f1"] = f1[present].mean() if present.any() else torch.tensor(0.0, dtype=torch.float64)
        out["balanced_accuracy"] = recall[support > 0].mean() if (support > 0).any() else torch.tensor(0.0, dtype=torch.float64)
        out["confusion_matrix"] = self.confusion.clone()
        return out


class _OneFigure(ClassificationReport):
    """One figure of the report as its own registered metric, so a suite can ask for it by name.

    Built like the report (``num_classes``, ``top_k``) and updated the same way, so the task axis
    feeds every classification metric alike, a third party's included.
    """

    figure: str = ""

    def compute(self) -> torch.Tensor:  # type: ignore[override]
        return super().compute()[self.figure]


class Accuracy(_OneFigure):
    """Top-1 accuracy."""

    figure = "accuracy"


class MacroF1(_OneFigure):
    """F1 averaged over the classes that occur (macro)."""

    figure = "macro_f1"


class BalancedAccuracy(_OneFigure):
    """Recall averaged over the classes that occur in the targets."""

    figure = "balanced_accuracy"
