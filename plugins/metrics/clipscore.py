"""CLIPScore (Hessel et al. 2021): ``w * max(cos(image, text), 0)`` with w = 2.5, averaged.

The embeddings come from any dual encoder: pass a callable for each side (e.g.
a registered hf-clip model's ``encode_image`` / ``encode_text``), or give
precomputed embeddings as ``update(image_embeddings=..., text_embeddings=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchmetrics import Metric


class CLIPScore(Metric):
    """Mean CLIPScore of (image, caption) pairs; ``w`` scales as in the paper (2.5)."""

    is_differentiable = False
    full_state_update = False
    higher_is_better = True

    def __init__(self, encode_image: Callable[[Any], torch.Tensor] | None = None,
                 encode_text: Callable[[Sequence[str]], torch.Tensor] | None = None, w: float = 2.5, **kwargs):
        super().__init__(**kwargs)
        self.encode_image = encode_image
        self.encode_text = encode_text
        self.w = w
        self.add_state("score_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, images: Any = None, captions: Sequence[str] | None = None, *,
               image_embeddings: torch.Tensor | None = None, text_embeddings: torch.Tensor | None = None) -> None:
        """Score (images, captions) through the encoders, or precomputed paired embeddings."""
        if image_embeddings is None or text_embeddings is None:
            if self.encode_image is None or self.encode_text is None or images is None or captions is None:
                raise ValueError("CLIPScore.update needs images and captions with encode_image/encode_text, "
                                 "or image_embeddings= and text_embeddings=")
            with torch.no_grad():
                image_embeddings, text_embeddings = self.encode_image(images), self.encode_text(list(captions))
        if image_embeddings.shape != text_embeddings.shape or image_embeddings.ndim != 2:
            raise ValueError(f"paired embeddings must both be [B, D], got {tuple(image_embeddings.shape)} "
                             f"and {tuple(text_embeddings.shape)}")
        cos = torch.nn.functional.cosine_similarity(image_embeddings.double(), text_embeddings.double(), dim=-1)
        self.score_sum += (self.w * cos.clamp(min=0)).sum()
        self.count += cos.shape[0]

    def compute(self) -> torch.Tensor:
        return self.score_sum / self.count.clamp(min=1)
