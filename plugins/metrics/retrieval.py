"""Cross-modal retrieval metrics with bounded memory (CLIP_benchmark semantics), torchmetrics side.

The kernel lives in :mod:`polymodal_plugins.metrics.retrieval_scores` (numpy,
torch-free); this module wraps it for tensors and distributed runs.

Semantics (CLIP_benchmark's rules, ties ranked by index), bounded memory
and the one-pass block walk are described there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from polymodal_plugins.metrics import retrieval_scores


def _numpy(x: torch.Tensor | np.ndarray | Sequence) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def retrieval_metrics(
    image_embeddings: torch.Tensor | np.ndarray,
    text_embeddings: torch.Tensor | np.ndarray,
    text_to_image: torch.Tensor | np.ndarray | Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 4096,
    normalize: bool = True,
    progress: bool = False,
    threads: int | None = None,
) -> dict[str, float]:
    """:func:`polymodal_plugins.metrics.retrieval_scores.retrieval_metrics` on tensors or arrays.

    The torch-free kernel does the work, so an in-run metric and
    ``polymodal score retrieval`` give the same numbers for the same inputs.
    """
    return retrieval_scores.retrieval_metrics(_numpy(image_embeddings), _numpy(text_embeddings), _numpy(text_to_image),
                                              ks=ks, chunk_size=chunk_size, normalize=normalize, progress=progress,
                                              threads=threads)


def retrieval_details(
    image_embeddings: torch.Tensor | np.ndarray,
    text_embeddings: torch.Tensor | np.ndarray,
    text_to_image: torch.Tensor | np.ndarray | Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 4096,
    normalize: bool = True,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """:func:`retrieval_metrics` and the per-query scores behind each mean (same kernel)."""
    return retrieval_scores.retrieval_details(_numpy(image_embeddings), _numpy(text_embeddings),
                                              _numpy(text_to_image), ks=ks, chunk_size=chunk_size,
                                              normalize=normalize)


class RetrievalRecall(Metric):
    """Image-text retrieval metrics over everything seen, synchronised across processes.

    ``update(image_embeddings, image_ids, text_embeddings, text_image_ids)``: ids
    are global integers (a dataset index), so shards from several processes
    combine: ``compute`` maps each text to the row of its image id.

    Recalls, MRR and mAP are higher-is-better and ranks lower-is-better, so the
    metric declares ``higher_is_better = None`` and each figure's sense in
    ``figure_directions`` (read by :func:`polymodal.evaluation.declared_direction`).
    :meth:`compute_details` adds the per-query scores behind each mean (the
    retrieval axis's intervals). ``headline_figures`` names recall@1 (the
    smallest K) both ways, the embedding models' robustness headline.
    """

    is_differentiable = False
    full_state_update = False
    higher_is_better = None

    def __init__(self, ks: Sequence[int] = (1, 5, 10), chunk_size: int = 4096, normalize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.ks = tuple(ks)
        self.chunk_size = chunk_size
        self.normalize = normalize
        for name in ("image_embeddings", "image_ids", "text_embeddings", "text_image_ids"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    @property
    def figure_directions(self) -> dict[str, bool]:
        """Each ``compute()`` key's sense: ranks lower-is-better, everything else higher."""
        names = [f"recall@{k}" for k in self.ks] + ["mean_rank", "median_rank", "mrr", "map"]
        return {f"{side}_{n}": not n.endswith("_rank") for side in ("text_to_image", "image_to_text") for n in names}

    @property
    def headline_figures(self) -> tuple[str, str]:
        """The figures a robustness axis compares as this metric's headline: recall at the smallest K, both ways."""
        k = min(self.ks)
        return f"text_to_image_recall@{k}", f"image_to_text_recall@{k}"

    def update(self, image_embeddings: torch.Tensor, image_ids: torch.Tensor,
               text_embeddings: torch.Tensor, text_image_ids: torch.Tensor) -> None:
        self.image_embeddings.append(image_embeddings.detach().float())
        self.image_ids.append(torch.as_tensor(image_ids, dtype=torch.int64).reshape(-1))
        self.text_embeddings.append(text_embeddings.detach().float())
        self.text_image_ids.append(torch.as_tensor(text_image_ids, dtype=torch.int64).reshape(-1))

    def _inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image embeddings once per id, text embeddings, each text's image row)."""
        ids = dim_zero_cat(self.image_ids)
        img = dim_zero_cat(self.image_embeddings)
        # an image seen twice (e.g. a padded distributed shard) is kept once
        uniq, first = torch.unique(ids, return_inverse=True)
        keep = torch.full((len(uniq),), -1, dtype=torch.int64).scatter_reduce(
            0, first, torch.arange(len(ids)), reduce="amin", include_self=False)
        img = img[keep]
        text_ids = dim_zero_cat(self.text_image_ids)
        pos = torch.searchsorted(uniq, text_ids)
        pos_c = pos.clamp(max=len(uniq) - 1)
        if bool((uniq[pos_c] != text_ids).any()):
            missing = int(text_ids[uniq[pos_c] != text_ids][0])
            raise ValueError(f"a text refers to image id {missing}, which was never given")
        return img, dim_zero_cat(self.text_embeddings), pos_c

    def compute(self) -> dict[str, torch.Tensor]:
        result = retrieval_metrics(*self._inputs(), self.ks, self.chunk_size, self.normalize)
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in result.items()}

    def compute_details(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """``compute()``'s figures (floats) and the per-query scores behind each mean, from this process's
        states (the retrieval axis measures the whole split on one rank)."""
        return retrieval_details(*self._inputs(), self.ks, self.chunk_size, self.normalize)
