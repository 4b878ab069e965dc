"""Cross-modal retrieval metrics with bounded memory (CLIP_benchmark semantics).

Text -> image: each text has one positive image; a hit at K if that image is
in the top K. Image -> text: an image has several captions; a hit at K if ANY
of them is in the top K (CLIP_benchmark's rule). Also mean / median rank of the
(best) positive, MRR and mAP.

The similarity matrix is never materialised: images and texts are walked in
``chunk_size`` blocks, each block of scores is computed once and serves both
directions, and per query we only *count* how many non-positive items score
above its positive(s) (rank = 1 + that count), which gives every Recall@K,
mean/median rank, MRR and mAP from one pass of matmuls. Peak memory is
therefore about ``chunk_size x chunk_size`` scores (plus the embeddings),
whatever N and M are: 100,000 images x 500,000 texts is fine. Positive pairs
are excluded by index, never by comparing re-computed scores, so rounding
cannot make a positive beat itself. Ties count in the query's favour (as a
top-k that keeps the positive).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def _count(mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Trues along ``dim``; summing the bytes as uint8 into int32 is ~3x faster than ``bool.sum()`` on CPU."""
    return mask.view(torch.uint8).sum(dim=dim, dtype=torch.int32)


def _rank_counts(
    img: torch.Tensor,
    txt: torch.Tensor,
    t2i: torch.Tensor,
    pos_score: torch.Tensor,
    thr: torch.Tensor,
    thr_low: torch.Tensor,
    chunk_size: int,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both directions' "how many non-positives score higher" counts from ONE pass of matmuls.

    The image x text similarity block ``S[i, j]`` serves both directions: text
    ``j`` (a column) counts the images above its positive's score, image ``i``
    (a row) counts the texts above each of its positives' scores ``thr[i]``.
    Computing it once halves the matmuls of two separate passes. Positive pairs
    are knocked out by index (one per text), not with a dense mask. A text
    scoring below an image's *lowest* positive (``thr_low``) counts for none
    of its positives, so only the texts above it are compared against the
    image's other thresholds, item by item: usually few, since positives score
    high, and at most one block's worth, so memory stays bounded.
    """
    n, m = img.shape[0], txt.shape[0]
    p_cols = thr.shape[1]
    t2i_counts = torch.zeros(m, dtype=torch.int64)
    i2t_counts = torch.zeros((n, p_cols), dtype=torch.int64)
    steps = (m + chunk_size - 1) // chunk_size
    for step, t0 in enumerate(range(0, m, chunk_size)):
        t1 = min(t0 + chunk_size, m)
        block_txt = txt[t0:t1]
        block_pos = pos_score[t0:t1][None, :]
        block_img_of = t2i[t0:t1]
        for i0 in range(0, n, chunk_size):
            i1 = min(i0 + chunk_size, n)
            scores = img[i0:i1] @ block_txt.T  # [images, texts]
            cols = torch.nonzero((block_img_of >= i0) & (block_img_of < i1)).squeeze(1)
            scores[block_img_of[cols] - i0, cols] = float("-inf")
            t2i_counts[t0:t1] += _count(scores > block_pos, 0)
            above = scores > thr_low[i0:i1, None]
            if p_cols == 1:
                i2t_counts[i0:i1, 0] += _count(above, 1)
                continue
            low = _count(above, 1)
            n_above = int(low.sum())
            if n_above == 0:
                continue
            if n_above * 8 > above.numel():  # hard negatives everywhere: one dense pass per positive is cheaper
                for p in range(p_cols):
                    i2t_counts[i0:i1, p] += _count(scores > thr[i0:i1, p : p + 1], 1)
                continue
            # Only items above an image's lowest positive can count for any of its positives, and they
            # are few when positives score high: compare just those, not the block, P times.
            rows, cols = torch.nonzero(above, as_tuple=True)
            hits = scores[rows, cols][:, None] > thr[i0 + rows]  # [items above, P]
            i2t_counts.index_add_(0, i0 + rows, hits.to(torch.int64))
        if progress and (step % 10 == 0 or step == steps - 1):
            print(f"\rretrieval: {t1}/{m} texts x {n} images", end="\n" if step == steps - 1 else "",
                  file=sys.stderr, flush=True)
    return t2i_counts, i2t_counts


def retrieval_metrics(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    text_to_image: torch.Tensor | Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 4096,
    normalize: bool = True,
    progress: bool = False,
) -> dict[str, float]:
    """Recall@K both ways, mean/median rank, MRR and mAP of image-text retrieval.

    ``image_embeddings`` is ``[N, D]``, ``text_embeddings`` ``[M, D]`` and
    ``text_to_image[j]`` the row of text ``j``'s image. Embeddings are
    L2-normalised first unless ``normalize=False`` (cosine similarity, as CLIP).
    """
    img = torch.as_tensor(image_embeddings)
    txt = torch.as_tensor(text_embeddings)
    t2i = torch.as_tensor(text_to_image, dtype=torch.int64)
    if img.ndim != 2 or txt.ndim != 2 or img.shape[1] != txt.shape[1]:
        raise ValueError(f"embeddings must be [N, D] and [M, D] with the same D, got {tuple(img.shape)} and {tuple(txt.shape)}")
    if t2i.shape != (txt.shape[0],):
        raise ValueError(f"text_to_image must have one entry per text ({txt.shape[0]}), got shape {tuple(t2i.shape)}")
    if len(t2i) and (int(t2i.min()) < 0 or int(t2i.max()) >= img.shape[0]):
        bad = int(torch.nonzero((t2i < 0) | (t2i >= img.shape[0]))[0])
        raise ValueError(f"text {bad} points to image {int(t2i[bad])}, but there are {img.shape[0]} images")
    if not torch.is_floating_point(img):
        img, txt = img.float(), txt.float()
    if normalize:
        img = torch.nn.functional.normalize(img, dim=-1)
        txt = torch.nn.functional.normalize(txt, dim=-1)
    n, m = img.shape[0], txt.shape[0]
    pos_score = (txt * img[t2i]).sum(dim=1)  # [M]: each text with its image
    out: dict[str, float] = {}

    # image -> text thresholds: the image's captions' scores, sorted (best first)
    order = torch.argsort(t2i, stable=True)
    per_image = torch.bincount(t2i, minlength=n)
    has_text = per_image > 0
    p_max = int(per_image.max()) if m else 0
    thr = torch.full((n, max(p_max, 1)), float("-inf"), dtype=pos_score.dtype)
    starts = torch.cumsum(per_image, 0) - per_image
    slot = torch.arange(m) - starts[t2i[order]]
    thr[t2i[order], slot] = pos_score[order]
    thr = torch.sort(thr, dim=1, descending=True).values
    real = torch.isfinite(thr)
    thr = torch.where(real, thr, torch.full_like(thr, float("inf")))  # padding: nothing scores above +inf
    # the lowest real threshold per image (+inf for an image without text: nothing counts)
    thr_low = thr.gather(1, (per_image - 1).clamp(min=0)[:, None])[:, 0]
    thr_low = torch.where(has_text, thr_low, torch.full_like(thr_low, float("inf")))
    t2i_counts, i2t_counts = _rank_counts(img, txt, t2i, pos_score, thr, thr_low, chunk_size, progress)

    # text -> image: one positive per text
    ranks = t2i_counts.double() + 1
    for k in ks:
        out[f"text_to_image_recall@{k}"] = float((ranks <= k).double().mean())
    out["text_to_image_mean_rank"] = float(ranks.mean())
    out["text_to_image_median_rank"] = float(ranks.median())
    out["text_to_image_mrr"] = float((1 / ranks).mean())
    out["text_to_image_map"] = out["text_to_image_mrr"]

    # image -> text: a hit if any of the image's captions ranks within K
    valid = has_text
    best_rank = i2t_counts[:, 0].double() + 1  # best positive's position
    br = best_rank[valid]
    for k in ks:
        out[f"image_to_text_recall@{k}"] = float((br <= k).double().mean()) if len(br) else float("nan")
    out["image_to_text_mean_rank"] = float(br.mean())
    out["image_to_text_median_rank"] = float(br.median())
    out["image_to_text_mrr"] = float((1 / br).mean())
    idx = torch.arange(1, thr.shape[1] + 1, dtype=torch.float64)[None, :]
    positions = i2t_counts.double() + idx  # i-th best positive sits after i-1 positives and its non-positives
    ap = torch.where(real, idx / positions, torch.zeros_like(positions)).sum(dim=1) / per_image.clamp(min=1)
    out["image_to_text_map"] = float(ap[valid].mean())
    out["images_without_text"] = int((~valid).sum())
    return out


class RetrievalRecall(Metric):
    """Image-text retrieval metrics over everything seen, synchronised across processes.

    ``update(image_embeddings, image_ids, text_embeddings, text_image_ids)``: ids
    are global integers (a dataset index), so shards from several processes
    combine: ``compute`` maps each text to the row of its image id.
    """

    is_differentiable = False
    full_state_update = False
    higher_is_better = True

    def __init__(self, ks: Sequence[int] = (1, 5, 10), chunk_size: int = 4096, normalize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.ks = tuple(ks)
        self.chunk_size = chunk_size
        self.normalize = normalize
        for name in ("image_embeddings", "image_ids", "text_embeddings", "text_image_ids"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, image_embeddings: torch.Tensor, image_ids: torch.Tensor,
               text_embeddings: torch.Tensor, text_image_ids: torch.Tensor) -> None:
        self.image_embeddings.append(image_embeddings.detach().float())
        self.image_ids.append(torch.as_tensor(image_ids, dtype=torch.int64).reshape(-1))
        self.text_embeddings.append(text_embeddings.detach().float())
        self.text_image_ids.append(torch.as_tensor(text_image_ids, dtype=torch.int64).reshape(-1))

    def compute(self) -> dict[str, torch.Tensor]:
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
        result = retrieval_metrics(img, dim_zero_cat(self.text_embeddings), pos_c, self.ks, self.chunk_size, self.normalize)
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in result.items()}
