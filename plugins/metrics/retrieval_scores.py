"""Cross-modal retrieval metrics in numpy, with bounded memory (CLIP_benchmark semantics).

Torch-free on purpose: ``polymodal score retrieval`` scores embedding files
without importing torch, and the in-run :class:`~polymodal_plugins.metrics.retrieval.RetrievalRecall`
calls this same kernel, so the two paths cannot disagree.

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
top-k that keeps the positive). The median rank of an even count is the lower
middle value (``torch.median``'s convention, which earlier releases reported).

numpy rather than torch for the block work as well: on CPU, numpy's compare
and uint8 count of a 4096 x 4096 block take about a tenth of the block's
matmul, torch's about as long as the matmul itself (measured, see
``docs/performance.md``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np


#: Bytes of scores per compare-and-count slab (about an L2 cache).
SLAB_BYTES = 1 << 20

#: Up to this many captions per image, image -> text counts use one dense pass per caption.
DENSE_POSITIVES = 12


def _count(mask: np.ndarray, axis: int) -> np.ndarray:
    """Trues along ``axis``, as bytes summed into uint16 when they cannot overflow it.

    Measured on a 128 x 2048 slab: 3x faster than summing into int32, 5x
    faster than ``count_nonzero``.
    """
    dtype = np.uint16 if mask.shape[axis] < 1 << 16 else np.int32
    return mask.view(np.uint8).sum(axis=axis, dtype=dtype)


def _rank_counts(
    img: np.ndarray,
    txt: np.ndarray,
    t2i: np.ndarray,
    pos_score: np.ndarray,
    thr: np.ndarray,
    thr_low: np.ndarray,
    chunk_size: int,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
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
    t2i_counts = np.zeros(m, dtype=np.int64)
    i2t_counts = np.zeros((n, p_cols), dtype=np.int64)
    steps = (m + chunk_size - 1) // chunk_size
    buf = np.empty((min(chunk_size, n), min(chunk_size, m)), dtype=img.dtype)
    # compare-and-count passes run over slabs of rows that stay in the CPU cache (~1 MiB), so only the
    # first of a slab's passes reads memory: the block is read from RAM once, not once per pass
    slab = max(1, min(buf.shape[0], SLAB_BYTES // max(1, buf.shape[1] * buf.itemsize)))
    mask = np.empty((slab, buf.shape[1]), dtype=bool)
    for step, t0 in enumerate(range(0, m, chunk_size)):
        t1 = min(t0 + chunk_size, m)
        block_txt_t = np.ascontiguousarray(txt[t0:t1].T)
        block_pos = pos_score[t0:t1][None, :]
        block_img_of = t2i[t0:t1]
        for i0 in range(0, n, chunk_size):
            i1 = min(i0 + chunk_size, n)
            scores = np.matmul(img[i0:i1], block_txt_t, out=buf[: i1 - i0, : t1 - t0])  # [images, texts]
            cols = np.flatnonzero((block_img_of >= i0) & (block_img_of < i1))
            scores[block_img_of[cols] - i0, cols] = -np.inf
            for r0 in range(0, i1 - i0, slab):
                r1 = min(r0 + slab, i1 - i0)
                s, g0, g1 = scores[r0:r1], i0 + r0, i0 + r1
                above = mask[: r1 - r0, : t1 - t0]
                t2i_counts[t0:t1] += _count(np.greater(s, block_pos, out=above), 0)
                if p_cols <= DENSE_POSITIVES:
                    # one compare-and-count pass per positive, from cache: cheaper than gathering the few
                    # items above the lowest positive (np.nonzero alone costs about ten such passes)
                    for p in range(p_cols):
                        i2t_counts[g0:g1, p] += _count(np.greater(s, thr[g0:g1, p : p + 1], out=above), 1)
                    continue
                np.greater(s, thr_low[g0:g1, None], out=above)
                if not above.any():
                    continue
                # many positives per image: only items above an image's lowest positive can count for any
                # of them, and they are few when positives score high, so compare just those
                rows, cols_above = np.nonzero(above)
                hits = s[rows, cols_above][:, None] > thr[g0 + rows]  # [items above, P]
                np.add.at(i2t_counts, g0 + rows, hits.astype(np.int64))
        if progress and (step % 10 == 0 or step == steps - 1):
            print(f"\rretrieval: {t1}/{m} texts x {n} images", end="\n" if step == steps - 1 else "",
                  file=sys.stderr, flush=True)
    return t2i_counts, i2t_counts


def _lower_median(x: np.ndarray) -> float:
    if x.size == 0:
        return float("nan")
    return float(np.partition(x, (x.size - 1) // 2)[(x.size - 1) // 2])


def _normalize(x: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.maximum(norm, 1e-12)[:, None]


def retrieval_metrics(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    text_to_image: np.ndarray | Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 4096,
    normalize: bool = True,
    progress: bool = False,
) -> dict[str, float]:
    """Recall@K both ways, mean/median rank, MRR and mAP of image-text retrieval (see :func:`retrieval_details`)."""
    return retrieval_details(image_embeddings, text_embeddings, text_to_image, ks, chunk_size, normalize, progress)[0]


def retrieval_details(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    text_to_image: np.ndarray | Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 4096,
    normalize: bool = True,
    progress: bool = False,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Recall@K both ways, mean/median rank, MRR and mAP of image-text retrieval, and the per-query scores.

    The second value maps every figure that is a mean over queries (recall@K,
    mean rank, MRR, mAP) to its per-query scores, in query order (texts for
    ``text_to_image_*``, images with at least one text for ``image_to_text_*``),
    for bootstrap intervals and paired tests.

    ``image_embeddings`` is ``[N, D]``, ``text_embeddings`` ``[M, D]`` and
    ``text_to_image[j]`` the row of text ``j``'s image. Embeddings are
    L2-normalised first unless ``normalize=False`` (cosine similarity, as CLIP).
    Integer embeddings are scored as float32.
    """
    img = np.asarray(image_embeddings)
    txt = np.asarray(text_embeddings)
    t2i = np.asarray(text_to_image, dtype=np.int64)
    if img.ndim != 2 or txt.ndim != 2 or img.shape[1] != txt.shape[1]:
        raise ValueError(f"embeddings must be [N, D] and [M, D] with the same D, got {tuple(img.shape)} and {tuple(txt.shape)}")
    if t2i.shape != (txt.shape[0],):
        raise ValueError(f"text_to_image must have one entry per text ({txt.shape[0]}), got shape {tuple(t2i.shape)}")
    if len(t2i) and (int(t2i.min()) < 0 or int(t2i.max()) >= img.shape[0]):
        bad = int(np.flatnonzero((t2i < 0) | (t2i >= img.shape[0]))[0])
        raise ValueError(f"text {bad} points to image {int(t2i[bad])}, but there are {img.shape[0]} images")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    dtype = np.result_type(img.dtype, txt.dtype)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float32)
    img, txt = img.astype(dtype, copy=False), txt.astype(dtype, copy=False)
    if normalize:
        img, txt = _normalize(img), _normalize(txt)
    n, m = img.shape[0], txt.shape[0]
    pos_score = np.einsum("ij,ij->i", txt, img[t2i])  # [M]: each text with its image
    out: dict[str, float] = {}

    # image -> text thresholds: the image's captions' scores, sorted (best first)
    order = np.argsort(t2i, kind="stable")
    per_image = np.bincount(t2i, minlength=n)
    has_text = per_image > 0
    p_max = int(per_image.max()) if m else 0
    thr = np.full((n, max(p_max, 1)), -np.inf, dtype=pos_score.dtype)
    starts = np.cumsum(per_image) - per_image
    slot = np.arange(m) - starts[t2i[order]]
    thr[t2i[order], slot] = pos_score[order]
    thr = -np.sort(-thr, axis=1)
    real = np.isfinite(thr)
    thr = np.where(real, thr, np.inf).astype(pos_score.dtype)  # padding: nothing scores above +inf
    # the lowest real threshold per image (+inf for an image without text: nothing counts)
    thr_low = np.take_along_axis(thr, np.maximum(per_image - 1, 0)[:, None], axis=1)[:, 0]
    thr_low = np.where(has_text, thr_low, np.inf).astype(pos_score.dtype)
    t2i_counts, i2t_counts = _rank_counts(img, txt, t2i, pos_score, thr, thr_low, chunk_size, progress)

    per: dict[str, np.ndarray] = {}
    # text -> image: one positive per text
    ranks = t2i_counts.astype(np.float64) + 1
    for k in ks:
        per[f"text_to_image_recall@{k}"] = (ranks <= k).astype(np.float64)
        out[f"text_to_image_recall@{k}"] = float((ranks <= k).mean())
    out["text_to_image_mean_rank"] = float(ranks.mean())
    out["text_to_image_median_rank"] = _lower_median(ranks)
    out["text_to_image_mrr"] = float((1 / ranks).mean())
    out["text_to_image_map"] = out["text_to_image_mrr"]
    per["text_to_image_mean_rank"] = ranks
    per["text_to_image_mrr"] = per["text_to_image_map"] = 1 / ranks

    # image -> text: a hit if any of the image's captions ranks within K
    valid = has_text
    br = i2t_counts[:, 0].astype(np.float64)[valid] + 1  # best positive's position
    for k in ks:
        per[f"image_to_text_recall@{k}"] = (br <= k).astype(np.float64)
        out[f"image_to_text_recall@{k}"] = float((br <= k).mean()) if len(br) else float("nan")
    out["image_to_text_mean_rank"] = float(br.mean()) if len(br) else float("nan")
    out["image_to_text_median_rank"] = _lower_median(br)
    out["image_to_text_mrr"] = float((1 / br).mean()) if len(br) else float("nan")
    idx = np.arange(1, thr.shape[1] + 1, dtype=np.float64)[None, :]
    positions = i2t_counts.astype(np.float64) + idx  # i-th best positive sits after i-1 positives and its non-positives
    ap = np.where(real, idx / positions, 0.0).sum(axis=1) / np.maximum(per_image, 1)
    out["image_to_text_map"] = float(ap[valid].mean()) if valid.any() else float("nan")
    out["images_without_text"] = int((~valid).sum())
    per["image_to_text_mean_rank"] = br
    per["image_to_text_mrr"] = 1 / br
    per["image_to_text_map"] = ap[valid]
    return out, per
