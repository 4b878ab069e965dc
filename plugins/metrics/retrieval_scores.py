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
cannot make a positive beat itself.

Ties rank by index: an item scoring exactly as much as a positive ranks above
it when its index is lower, as in a stable sort of the query's scores (and as
``torch.topk`` on CPU picks among equal scores). Earlier releases counted ties
in the query's favour, so a collapsed model (every embedding equal) scored
Recall@1 = 1.0; by index it scores what a fixed order gives, about chance.
Inputs without ties score the same under both rules. The median rank of an
even count is the lower middle value (``torch.median``'s convention, which
earlier releases reported).

numpy rather than torch for the block work as well: on CPU, numpy's compare
and uint8 count of a 4096 x 4096 block take about a tenth of the block's
matmul, torch's about as long as the matmul itself (measured, see
``docs/performance.md``). With ``threads`` > 1 the image rows are split
over threads, each doing its own blocks' matmuls (BLAS held to one thread)
and passes; numpy releases the GIL in both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np


#: Bytes of scores per compare-and-count slab (about an L2 cache).
SLAB_BYTES = 1 << 20

#: Up to this many captions per image, image -> text counts may use one dense pass per caption.
DENSE_POSITIVES = 12

#: Share of a slab's items at or above their image's lowest positive under which only those items are compared.
SPARSE_SHARE = 0.05


def _count(mask: np.ndarray, axis: int) -> np.ndarray:
    """Trues along ``axis``, as bytes summed into uint16 when they cannot overflow it.

    Measured on a 128 x 2048 slab: 3x faster than summing into int32, 5x
    faster than ``count_nonzero``.
    """
    dtype = np.uint16 if mask.shape[axis] < 1 << 16 else np.int32
    return mask.view(np.uint8).sum(axis=axis, dtype=dtype)


def _below(x: np.ndarray) -> np.ndarray:
    """The largest value of ``x``'s dtype under each element: ``s > _below(x)`` is ``s >= x``, in one compare."""
    return np.nextafter(x, np.array(-np.inf, dtype=x.dtype))


def default_threads() -> int:
    """Threads that walk the blocks: ``OMP_NUM_THREADS`` when set (it limits BLAS too), else the usable CPUs."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class _Block:
    """One image block x text block of scores, counted a cache-sized slab of rows at a time.

    Text -> image: one compare-and-count pass per slab. Image -> text: the
    items at or above each image's *lowest* positive are found with one pass
    (they are usually a few percent: positives score high); when they are few
    (at most ``SPARSE_SHARE`` of the slab, or always with more than
    ``DENSE_POSITIVES`` positives per image) only they are compared against
    every positive, else one dense pass per positive is cheaper.

    Ties are broken by index, as a stable sort of each query's scores would:
    an item that scores exactly as much as a positive counts above it when its
    index is lower. A dense pass picks its threshold per query: ``>= p`` (``>
    _below(p)``) when the whole slab (text block) lies before the positive,
    ``> p`` otherwise; then only the positive pairs inside the slab need an
    extra look, at the items equal to ``p`` on the positive's side, a strip of
    the cache-resident slab per pair. The sparse path compares indices directly.
    """

    def __init__(self, scores, i0, t0, t2i_local, pos_block, below_block, thr_blk, thr, jpos, slot_of, low_below,
                 i2t_counts, slab):
        # thr_blk: [rows of this block, P] the dense passes' thresholds for this text block (None: sparse only)
        self.scores, self.i0, self.t0, self.low_below = scores, i0, t0, low_below
        self.t2i_local = t2i_local      # [texts in block] image row of each text, relative to i0 (may be outside)
        self.pos, self.below = pos_block, below_block  # [texts in block] positive's score, and the value just under it
        self.thr_blk, self.thr, self.jpos, self.slot_of = thr_blk, thr, jpos, slot_of
        self.i2t_counts, self.slab = i2t_counts, slab

    def count(self, mask: np.ndarray) -> np.ndarray:
        """Counts for the block's rows, a slab at a time; adds image -> text counts in place, returns text -> image."""
        rows, width = self.scores.shape
        t2i_part = np.zeros(width, dtype=np.int64)
        p_cols = self.thr.shape[1]
        for r0 in range(0, rows, self.slab):
            r1 = min(r0 + self.slab, rows)
            s, g0, g1 = self.scores[r0:r1], self.i0 + r0, self.i0 + r1
            above = mask[: r1 - r0, :width]
            # text -> image: >= for texts whose image comes after this slab, > otherwise
            col_thr = np.where(self.t2i_local >= r1, self.below, self.pos)
            t2i_part += _count(np.greater(s, col_thr[None, :], out=above), 0)
            # image -> text: the items at or above each image's lowest positive
            per_row = _count(np.greater(s, self.low_below[g0:g1, None], out=above), 1)
            found = int(per_row.sum())
            dense = self.thr_blk is not None and found > SPARSE_SHARE * above.size
            if dense:
                for p in range(p_cols):
                    self.i2t_counts[g0:g1, p] += _count(np.greater(s, self.thr_blk[r0:r1, p : p + 1], out=above), 1)
            elif found:
                self._sparse_rows(s, g0, above, per_row)
            # ties by index for the positive pairs inside this slab
            in_slab = np.flatnonzero((self.t2i_local >= r0) & (self.t2i_local < r1))
            if in_slab.size:
                at, v = self.t2i_local[in_slab] - r0, self.pos[in_slab]
                col_eq = (s[:, in_slab] == v[None, :]) & (np.arange(r1 - r0)[:, None] < at[None, :])
                t2i_part[in_slab] += _count(col_eq, 0)
                if dense:
                    row_eq = (s[at] == v[:, None]) & (np.arange(width)[None, :] < in_slab[:, None])
                    self.i2t_counts[g0 + at, self.slot_of[self.t0 + in_slab]] += _count(row_eq, 1)
        return t2i_part

    def _sparse_rows(self, s: np.ndarray, g0: int, above: np.ndarray, per_row: np.ndarray) -> None:
        """Image -> text counts from the items ``above`` marks (row-major) against every positive, ties by index."""
        flat = np.flatnonzero(above)
        v = (s.ravel()[flat] if s.flags.c_contiguous else s[np.divmod(flat, above.shape[1])])[:, None]
        thr = np.repeat(self.thr[g0 : g0 + len(per_row)], per_row, axis=0)  # [items found, P], row by row
        hits = v > thr
        tied = v == thr
        if tied.any():  # rare with real embeddings: only then look at indices
            rows, cols = np.divmod(flat, above.shape[1])
            hits |= tied & ((self.t0 + cols)[:, None] < self.jpos[g0 + rows])
        # per-row sums are differences of a running sum at the rows' ends
        run = np.zeros((len(flat) + 1, hits.shape[1]), dtype=np.int32)
        np.cumsum(hits, axis=0, out=run[1:])
        ends = np.cumsum(per_row, dtype=np.int64)
        self.i2t_counts[g0 : g0 + len(per_row)] += run[ends] - run[ends - per_row]


def _rank_counts(
    img: np.ndarray,
    txt: np.ndarray,
    t2i: np.ndarray,
    pos_score: np.ndarray,
    thr: np.ndarray,
    jpos: np.ndarray,
    slot_of: np.ndarray,
    chunk_size: int,
    progress: bool = False,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Both directions' "how many non-positives rank higher" counts from ONE pass of matmuls.

    The image x text similarity block ``S[i, j]`` serves both directions: text
    ``j`` (a column) counts the images above its positive's score, image ``i``
    (a row) counts the texts above each of its positives' scores ``thr[i]``
    (sorted best first; ``jpos[i]`` their text indices, ``slot_of[j]`` text
    ``j``'s place in its image's row). Computing it once halves the matmuls of
    two separate passes. Positive pairs are knocked out by index (one per
    text), not with a dense mask. Ties rank by index (see :class:`_Block`).

    With ``threads`` > 1 the image rows are split into ranges, and each thread
    walks every text block for its own ranges: matmul (BLAS held to one
    thread) and the compare-and-count passes. numpy releases the GIL in both.
    Measured (``bench_retrieval.py``): the passes cost about as much as the
    matmul and are single-threaded in numpy, and threading only them next to
    BLAS's own threads gained nothing (BLAS workers spin between calls).
    Threads never write the same image rows; each keeps its own text counts,
    summed at the end.
    """
    n, m = img.shape[0], txt.shape[0]
    p_cols = thr.shape[1]
    threads = max(1, threads or default_threads())
    i2t_counts = np.zeros((n, p_cols), dtype=np.int64)
    below_all = _below(pos_score)
    dense_ok = p_cols <= DENSE_POSITIVES
    thr_below = _below(thr) if dense_ok else None
    low_below = _below(thr.min(axis=1)) if m else np.full(n, np.inf, dtype=thr.dtype)  # +inf: an image without text
    # row ranges: at most chunk_size rows, and at least one per thread when there are rows enough
    unit = max(1, min(chunk_size, -(-n // threads)))
    units = [(i0, min(i0 + unit, n)) for i0 in range(0, n, unit)]
    rows_max, width = min(unit, n), min(chunk_size, m)
    # compare-and-count passes run over slabs of rows that stay in the CPU cache (~1 MiB), so only the
    # first of a slab's passes reads memory: the block is read from RAM once, not once per pass
    slab = max(1, min(max(rows_max, 1), SLAB_BYTES // max(1, width * img.itemsize)))
    steps = (m + chunk_size - 1) // chunk_size

    def walk(mine: list[tuple[int, int]], report: bool) -> np.ndarray:
        t2i_counts = np.zeros(m, dtype=np.int64)
        buf = np.empty((rows_max, width), dtype=img.dtype)
        mask = np.empty((slab, width), dtype=bool)
        for step, t0 in enumerate(range(0, m, chunk_size)):
            t1 = min(t0 + chunk_size, m)
            block_txt_t = np.ascontiguousarray(txt[t0:t1].T)
            for i0, i1 in mine:
                # image -> text thresholds of these rows for this text block: >= for positives after it, > otherwise
                thr_blk = np.where(jpos[i0:i1] >= t1, thr_below[i0:i1], thr[i0:i1]) if dense_ok else None
                scores = np.matmul(img[i0:i1], block_txt_t, out=buf[: i1 - i0, : t1 - t0])  # [images, texts]
                local = t2i[t0:t1] - i0
                cols = np.flatnonzero((local >= 0) & (local < i1 - i0))
                scores[local[cols], cols] = -np.inf
                block = _Block(scores, i0, t0, local, pos_score[t0:t1], below_all[t0:t1], thr_blk, thr, jpos,
                               slot_of, low_below, i2t_counts, slab)
                t2i_counts[t0:t1] += block.count(mask)
            if report and (step % 10 == 0 or step == steps - 1):
                print(f"\rretrieval: {t1}/{m} texts x {n} images", end="\n" if step == steps - 1 else "",
                      file=sys.stderr, flush=True)
        return t2i_counts

    if threads == 1 or len(units) == 1:
        return walk(units, progress), i2t_counts
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        parts = [pool.submit(walk, units[k::threads], progress and k == 0) for k in range(min(threads, len(units)))]
        t2i_counts = sum(part.result() for part in parts)
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
    threads: int | None = None,
) -> dict[str, float]:
    """Recall@K both ways, mean/median rank, MRR and mAP of image-text retrieval (see :func:`retrieval_details`)."""
    return retrieval_details(image_embeddings, text_embeddings, text_to_image, ks, chunk_size, normalize, progress,
                             threads)[0]


def retrieval_details(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    text_to_image: np.ndarray | Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 4096,
    normalize: bool = True,
    progress: bool = False,
    threads: int | None = None,
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

    # image -> text thresholds: the image's captions' scores, best first (ties: lower text index first, the
    # order a stable sort ranks them in), their text indices, and each text's place in its image's row
    order = np.lexsort((np.arange(m), -pos_score, t2i))
    per_image = np.bincount(t2i, minlength=n)
    has_text = per_image > 0
    p_max = int(per_image.max()) if m else 0
    starts = np.cumsum(per_image) - per_image
    slot = np.arange(m) - starts[t2i[order]]
    thr = np.full((n, max(p_max, 1)), np.inf, dtype=pos_score.dtype)  # padding: nothing scores above +inf
    jpos = np.full(thr.shape, -1, dtype=np.int64)
    thr[t2i[order], slot] = pos_score[order]
    jpos[t2i[order], slot] = order
    slot_of = np.empty(m, dtype=np.int64)
    slot_of[order] = slot
    real = np.arange(thr.shape[1])[None, :] < per_image[:, None]
    t2i_counts, i2t_counts = _rank_counts(img, txt, t2i, pos_score, thr, jpos, slot_of, chunk_size, progress,
                                          threads)

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
