"""Speech-recognition metrics as torchmetrics ``Metric`` classes: WER and CER.

The state is two integer sums (edit distance, reference length), so batches
and processes add up to exactly the corpus value jiwer computes in one pass;
the counting itself lives in the torch-free :mod:`error_rates` kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric

from polymodal_plugins.metrics.error_rates import Normalization, count_errors


class _ErrorRate(Metric):
    """``update(predictions, references)``: one transcript string each per utterance."""

    unit = "wer"
    is_differentiable = False
    full_state_update = False
    higher_is_better = False

    def __init__(self, lowercase: bool = False, remove_punctuation: bool = False,
                 collapse_whitespace: bool = False, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.norm = Normalization.standard() if normalize else Normalization(
            lowercase, remove_punctuation, collapse_whitespace)
        self.add_state("errors", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("reference_length", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, predictions: Sequence[str], references: Sequence[str]) -> None:
        counts = count_errors(references, predictions, self.unit, self.norm)
        self.errors += counts.errors
        self.reference_length += counts.reference_length

    def compute(self) -> torch.Tensor:
        total = int(self.reference_length)
        if total == 0:
            raise ValueError(f"{type(self).__name__}: no reference tokens seen, the rate is undefined")
        return torch.tensor(int(self.errors) / total, dtype=torch.float64)


class WordErrorRate(_ErrorRate):
    """Corpus word error rate, equal to ``jiwer.wer`` (lower is better)."""

    unit = "wer"


class CharErrorRate(_ErrorRate):
    """Corpus character error rate (spaces count), equal to ``jiwer.cer`` (lower is better)."""

    unit = "cer"
