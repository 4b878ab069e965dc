"""Captioning metrics as torchmetrics ``Metric`` classes: BLEU, ROUGE-L, CIDEr-D.

CIDEr-D (and corpus BLEU) are corpus statistics: document frequencies and
n-gram totals depend on every image scored. So ``update`` only *stores* the
tokenised captions, and ``compute`` scores the whole corpus at once. Captions
are stored as UTF-8 bytes in ``uint8`` tensors (one newline-terminated line
per caption) so torchmetrics can gather them across processes with
``dist_reduce_fx="cat"``: three batches, or two processes, give exactly the
single-pass value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from polymodal_plugins.metrics.caption_scores import bleu, caption_scores, cider_d, rouge_l
from polymodal_plugins.metrics.ptb_tokenize import tokenize_caption


def _encode(lines: Sequence[str]) -> torch.Tensor:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy())


def _decode(state: list[torch.Tensor] | torch.Tensor) -> list[str]:
    data = dim_zero_cat(state) if isinstance(state, list) else state
    if data.numel() == 0:
        return []
    text = bytes(data.to(torch.uint8).cpu().numpy()).decode("utf-8")
    return text.split("\n")[:-1]


def _one_line(text: str) -> str:
    """Tokenised captions never hold newlines; the byte encoding relies on it."""
    return " ".join(text.split())


class CaptionCorpusMetric(Metric):
    """Stores tokenised candidates and references; subclasses score the corpus.

    ``update(predictions, references)``: one candidate string per image and a
    list of reference strings per image. ``tokenize=True`` applies coco-caption's
    PTB tokenisation; pass ``False`` for captions that are already tokenised.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, tokenize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.tokenize = tokenize
        self.add_state("candidates", default=[], dist_reduce_fx="cat")
        self.add_state("references", default=[], dist_reduce_fx="cat")
        self.add_state("refs_per_image", default=[], dist_reduce_fx="cat")

    def update(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        if isinstance(predictions, str) or len(predictions) != len(references):
            raise ValueError(
                f"expected one prediction per image and one list of references per image, got "
                f"{'a string' if isinstance(predictions, str) else len(predictions)} predictions and "
                f"{len(references)} reference lists"
            )
        prep = tokenize_caption if self.tokenize else _one_line
        counts = []
        flat = []
        for i, refs in enumerate(references):
            if isinstance(refs, str) or len(refs) == 0:
                raise ValueError(f"image #{i} of this batch: references must be a non-empty list of strings")
            counts.append(len(refs))
            flat.extend(prep(r) for r in refs)
        self.candidates.append(_encode([prep(p) for p in predictions]))
        self.references.append(_encode(flat))
        self.refs_per_image.append(torch.tensor(counts, dtype=torch.int64))

    def corpus(self) -> tuple[list[str], list[list[str]]]:
        """The stored (tokenised) candidates and references, in update order."""
        cands = _decode(self.candidates)
        flat = _decode(self.references)
        counts = dim_zero_cat(self.refs_per_image).tolist() if len(self.refs_per_image) else []
        refs: list[list[str]] = []
        pos = 0
        for c in counts:
            refs.append(flat[pos : pos + int(c)])
            pos += int(c)
        return cands, refs


class BLEU(CaptionCorpusMetric):
    """Corpus BLEU-1..4 as coco-caption computes it; ``compute`` returns ``{"bleu_1": ..., ...}``."""

    higher_is_better = True

    def __init__(self, n: int = 4, tokenize: bool = True, **kwargs):
        super().__init__(tokenize=tokenize, **kwargs)
        self.n = n

    def compute(self) -> dict[str, torch.Tensor]:
        cands, refs = self.corpus()
        result = bleu(cands, refs, self.n)
        return {f"bleu_{k + 1}": torch.tensor(v, dtype=torch.float64) for k, v in enumerate(result.corpus)}


class ROUGEL(CaptionCorpusMetric):
    """Mean ROUGE-L (beta 1.2, best precision and recall over references) as coco-caption computes it."""

    higher_is_better = True

    def compute(self) -> torch.Tensor:
        cands, refs = self.corpus()
        scores = [rouge_l(c, r) for c, r in zip(cands, refs)]
        return torch.tensor(float(np.mean(scores)) if scores else 0.0, dtype=torch.float64)


class CIDErD(CaptionCorpusMetric):
    """CIDEr-D (coco-caption's "CIDEr": sigma 6, clipping, x10) over the whole stored corpus."""

    higher_is_better = True

    def __init__(self, sigma: float = 6.0, tokenize: bool = True, **kwargs):
        super().__init__(tokenize=tokenize, **kwargs)
        self.sigma = sigma

    def compute(self) -> torch.Tensor:
        cands, refs = self.corpus()
        scores = cider_d(cands, refs, sigma=self.sigma)
        return torch.tensor(float(scores.mean()) if len(scores) else 0.0, dtype=torch.float64)


class CaptionScores(CaptionCorpusMetric):
    """All coco-caption scores at once: ``bleu_1..4``, ``rouge_l``, ``cider``.

    ``compute_per_image()`` also returns each image's scores, as coco-caption's
    ``imgToEval`` does.
    """

    higher_is_better = True

    def compute(self) -> dict[str, torch.Tensor]:
        summary, _ = self._scores()
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in summary.items()}

    def compute_per_image(self) -> tuple[dict[str, float], list[dict[str, float]]]:
        """Corpus scores and one dict of scores per image (in update order)."""
        return self._scores()

    def _scores(self) -> tuple[dict[str, float], list[dict[str, float]]]:
        cands, refs = self.corpus()
        return caption_scores(cands, refs)
