"""How far apart two modalities live in a dual encoder's shared space.

Contrastive dual encoders (CLIP and kin) place image and text embeddings in
two separate cones of the unit sphere: the *modality gap* (Liang et al.,
"Mind the Gap", NeurIPS 2022), measured as the distance between the two
modalities' centroids after L2 normalisation. Whether a smaller gap helps is
an open question, which is why researchers want it reported next to
retrieval and zero-shot accuracy, together with the two properties of
contrastive representations from Wang & Isola ("Understanding Contrastive
Representation Learning through Alignment and Uniformity", ICML 2020):

- ``alignment``   ``E ||f(a_i) - f(b_i)||^alpha`` over *paired* samples (lower
  is better aligned);
- ``uniformity``  ``log E_{i<j} exp(-t ||f(x_i) - f(x_j)||^2)`` within each
  modality (lower is more uniform on the sphere).

Uniformity needs every pair, so the metric keeps the normalised embeddings
(torchmetrics ``cat`` states, gathered across processes) and evaluates pairs
in chunks with a log-sum-exp: memory stays ``O(chunk * N)``, not ``O(N^2)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from polymodal import DataError


class ModalityGap(Metric):
    """``update(a, b)`` with paired embeddings ``[N, D]``; ``compute()`` returns a dict of scalars.

    Keys: ``gap`` (centroid distance, in [0, 2]), ``centroid_cosine``,
    ``alignment``, ``uniformity_a``, ``uniformity_b``, ``samples``.
    """

    is_differentiable = False
    higher_is_better = None  # several figures, with different senses
    full_state_update = False

    emb_a: list[torch.Tensor]
    emb_b: list[torch.Tensor]

    def __init__(self, uniformity_t: float = 2.0, alignment_alpha: float = 2.0, chunk_size: int = 2048,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if uniformity_t <= 0 or alignment_alpha <= 0 or chunk_size < 1:
            raise DataError("modality-gap: uniformity_t and alignment_alpha must be > 0 and chunk_size >= 1")
        self.uniformity_t = float(uniformity_t)
        self.alignment_alpha = float(alignment_alpha)
        self.chunk_size = int(chunk_size)
        self.add_state("emb_a", default=[], dist_reduce_fx="cat")
        self.add_state("emb_b", default=[], dist_reduce_fx="cat")

    def update(self, a: torch.Tensor, b: torch.Tensor) -> None:
        if a.dim() != 2 or b.dim() != 2 or a.shape != b.shape:
            raise DataError(
                f"modality-gap: expected paired embeddings of equal shape [N, D]; got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise DataError("modality-gap: embeddings contain NaN or infinity")
        if ((a.norm(dim=1) == 0) | (b.norm(dim=1) == 0)).any():
            raise DataError("modality-gap: an embedding is all zeros and has no direction on the sphere")
        self.emb_a.append(torch.nn.functional.normalize(a.detach().double(), dim=1))
        self.emb_b.append(torch.nn.functional.normalize(b.detach().double(), dim=1))

    def _uniformity(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        pieces = []
        for start in range(0, n, self.chunk_size):
            block = x[start : start + self.chunk_size]
            sq = torch.cdist(block, x).pow(2)  # [c, n]
            rows = torch.arange(start, start + block.shape[0], device=x.device).unsqueeze(1)
            upper = torch.arange(n, device=x.device).unsqueeze(0) > rows  # pairs i < j only
            pieces.append(torch.logsumexp((-self.uniformity_t * sq)[upper], dim=0))
        pairs = n * (n - 1) / 2
        return torch.logsumexp(torch.stack(pieces), dim=0) - math.log(pairs)

    def compute(self) -> dict[str, torch.Tensor]:
        count = sum(x.shape[0] for x in self.emb_a) if isinstance(self.emb_a, list) else self.emb_a.shape[0]
        if count < 2:
            raise DataError(f"modality-gap needs at least 2 paired samples, got {count}")
        a, b = dim_zero_cat(self.emb_a), dim_zero_cat(self.emb_b)
        ca, cb = a.mean(0), b.mean(0)
        return {
            "gap": (ca - cb).norm(),
            "centroid_cosine": torch.nn.functional.cosine_similarity(ca, cb, dim=0),
            "alignment": (a - b).norm(dim=1).pow(self.alignment_alpha).mean(),
            "uniformity_a": self._uniformity(a),
            "uniformity_b": self._uniformity(b),
            "samples": torch.tensor(a.shape[0]),
        }
