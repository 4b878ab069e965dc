"""BLEU-1..4, ROUGE-L and CIDEr-D exactly as coco-caption computes them.

Pure Python over *tokenised* captions (space-joined tokens, see
:mod:`polymodal_plugins.metrics.ptb_tokenize`). Every quirk of the reference
scorers is kept on purpose, because users compare against published numbers:

BLEU (``pycocoevalcap.bleu``): corpus BLEU from summed clipped n-gram counts;
  brevity penalty against the *closest* reference length per candidate, ties
  going to the shorter reference; smoothing constants ``tiny=1e-15`` (numerator)
  and ``small=1e-9`` (denominator).
ROUGE-L (``pycocoevalcap.rouge``): per image, LCS precision and recall against
  each reference, best precision and best recall taken *separately*, F-measure
  with beta 1.2; tokens split on a single space (so an empty caption is one
  empty token); the corpus score is the mean over images.
CIDEr-D (``pycocoevalcap.cider``, which coco-caption reports as "CIDEr"):
  1..4-grams, TF-IDF with document frequencies from the references of the
  corpus being scored, ``log(max(1, df))``, candidate weights clipped to the
  reference weights, a Gaussian length penalty with sigma 6 on the number of
  *bigrams* (the reference counts lengths that way), mean over n, mean over
  references, times 10. It is a corpus statistic: scores depend on every
  image in the corpus, so it must be computed over the whole corpus at once.

The implementation is written for speed (counters built by C code, a
bit-parallel LCS), not copied from the reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np

from polymodal_plugins.metrics.ngram_index import NgramOccurrences, index_texts

NGRAM_ORDER = 4
CIDER_SIGMA = 6.0


@attrs.frozen
class BleuResult:
    """Corpus BLEU-1..4 and the per-image values coco-caption also reports."""

    corpus: tuple[float, ...]
    per_image: np.ndarray  # float64 [N, n]


def _check(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    for i, refs in enumerate(references):
        if len(refs) == 0:
            raise ValueError(f"image #{i} has no reference captions")


def _index(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int):
    """Index candidates then references; return (corpus, ref_image, refs_per_image)."""
    refs_per_image = np.fromiter((len(r) for r in references), dtype=np.int64, count=len(references))
    ref_image = np.repeat(np.arange(len(references), dtype=np.int64), refs_per_image)
    texts = list(candidates)
    for refs in references:
        texts.extend(refs)
    return index_texts(texts, n), ref_image, refs_per_image


def _image_keys(occ: NgramOccurrences, num: int, ref_image: np.ndarray):
    """Candidate rows' and reference rows' ``ngram * num + image`` keys, both sorted (rows are n-gram major).

    Within one n-gram the rows run by sentence: candidates (sentence = image)
    first, then references, whose images never decrease. So both key arrays
    come out sorted, and matching a candidate's n-gram with its own image's
    references is a ``searchsorted``, with no further sort.
    """
    is_cand = occ.sentence < num
    cand = np.flatnonzero(is_cand)
    ref = np.flatnonzero(~is_cand)
    ref_sent = occ.sentence[ref] - num
    return cand, occ.ngram[cand] * num + occ.sentence[cand], ref, ref_sent, occ.ngram[ref] * num + ref_image[ref_sent]


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(0, np.int64)
    new = np.empty(sorted_keys.size, dtype=bool)
    new[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new[1:])
    return np.flatnonzero(new)


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """values at ``keys`` in ``sorted_keys`` (0 where absent)."""
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, np.float64)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return np.where(sorted_keys[pos] == keys, values[pos], 0.0)


def bleu(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = NGRAM_ORDER) -> BleuResult:
    """Corpus BLEU-1..n of tokenised candidates against their references."""
    _check(candidates, references)
    num = len(candidates)
    if num == 0:
        return BleuResult(tuple(0.0 for _ in range(n)), np.zeros((0, n)))
    return _bleu(_index(candidates, references, n), num, n)


def _bleu(indexed, num: int, n: int) -> BleuResult:
    tiny, small = 1e-15, 1e-9
    corpus, ref_image, _ = indexed
    testlen = corpus.lengths[:num]
    reflens = corpus.lengths[num:]
    # closest reference length, ties to the shorter one: min over (|diff|, length)
    scale = int(reflens.max()) + 1
    key = np.abs(reflens - testlen[ref_image]) * scale + reflens
    group_starts = np.concatenate([[0], np.cumsum(np.bincount(ref_image, minlength=num))[:-1]])
    reflen = np.minimum.reduceat(key, group_starts) % scale
    correct = np.zeros((num, n))
    guess = np.zeros((num, n))
    for k, occ in enumerate(corpus.orders):
        cand, hkey, ref, _, rkey = _image_keys(occ, num, ref_image)
        starts = _group_starts(rkey)
        maxcount = np.maximum.reduceat(occ.count[ref], starts) if starts.size else np.zeros(0)
        clipped = np.minimum(occ.count[cand], _lookup(rkey[starts], maxcount, hkey))
        correct[:, k] = np.bincount(occ.sentence[cand], weights=clipped, minlength=num)
        guess[:, k] = np.maximum(0, testlen - k)
    per_image = np.cumprod((correct + tiny) / (guess + small), axis=1) ** (1.0 / np.arange(1, n + 1))
    ratio = (testlen + tiny) / (reflen + small)
    short = ratio < 1
    per_image[short] *= np.exp(1 - 1 / ratio[short])[:, None]
    scores = []
    prod = 1.0
    for k in range(n):
        prod *= float(correct[:, k].sum() + tiny) / (guess[:, k].sum() + small)
        scores.append(prod ** (1.0 / (k + 1)))
    ratio_all = (int(testlen.sum()) + tiny) / (int(reflen.sum()) + small)
    if ratio_all < 1:
        scores = [s * math.exp(1 - 1 / ratio_all) for s in scores]
    return BleuResult(tuple(scores), per_image)


def _bit_masks(tokens: Sequence[str]) -> dict[str, int]:
    masks: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    return masks


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004).

    One big-integer update per token of ``b`` instead of a ``len(a) x len(b)``
    table: the reason ROUGE-L here is fast. Bits above ``len(a)`` collect
    carries but never flow back down (``u`` is a sub-mask of ``v``, so
    ``v - u`` never borrows), so one mask at the end replaces one per token.
    """
    if not a or not b:
        return 0
    get = _bit_masks(a).get
    v = (1 << len(a)) - 1
    full = v
    for tok in b:
        u = v & get(tok, 0)
        v = (v + u) | (v - u)
    return len(a) - (v & full).bit_count()


def rouge_l(candidate: str, refs: Sequence[str], beta: float = 1.2) -> float:
    """ROUGE-L of one tokenised candidate against its references (coco-caption rules).

    The candidate's bit masks are built once and shared by its references
    (the LCS length is symmetric), the LCS loop is inlined.
    """
    tc = candidate.split(" ")
    n_c = len(tc)
    get = _bit_masks(tc).get
    full = (1 << n_c) - 1
    prec_max = 0.0
    rec_max = 0.0
    for ref in refs:
        tr = ref.split(" ")
        v = full
        for tok in tr:
            u = v & get(tok, 0)
            v = (v + u) | (v - u)
        lcs = n_c - (v & full).bit_count()
        if lcs / n_c > prec_max:
            prec_max = lcs / n_c
        if lcs / len(tr) > rec_max:
            rec_max = lcs / len(tr)
    if prec_max != 0 and rec_max != 0:
        return ((1 + beta**2) * prec_max * rec_max) / (rec_max + beta**2 * prec_max)
    return 0.0


def cider_d(
    candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = NGRAM_ORDER, sigma: float = CIDER_SIGMA
) -> np.ndarray:
    """Per-image CIDEr-D of tokenised candidates; the corpus score is their mean.

    Document frequencies come from ``references`` (the whole corpus), so call
    this once with every image, never per batch.
    """
    _check(candidates, references)
    num = len(candidates)
    if num == 0:
        return np.zeros(0)
    return _cider_d(_index(candidates, references, n), num, n, sigma)


def _cider_d(indexed, num: int, n: int, sigma: float) -> np.ndarray:
    corpus, ref_image, refs_per_image = indexed
    log_n = math.log(float(num))
    # the reference scorer's "length" is the number of bigrams
    bigrams = np.maximum(corpus.lengths - 1, 0).astype(np.float64)
    delta = bigrams[:num][ref_image] - bigrams[num:]
    penalty = np.exp(-(delta**2) / (2 * sigma**2))
    total = np.zeros(len(ref_image))
    for occ in corpus.orders:
        width = max(occ.num_ngrams, 1)
        cand, hkey, ref, ref_sent, rkey = _image_keys(occ, num, ref_image)
        df = np.bincount(occ.ngram[ref[_group_starts(rkey)]], minlength=width).astype(np.float64)
        weight = occ.count * (log_n - np.log(np.maximum(1.0, df[occ.ngram])))
        norm = np.sqrt(np.bincount(occ.sentence, weights=weight**2, minlength=len(corpus.lengths)))
        rw = weight[ref]
        hw = _lookup(hkey, weight[cand], rkey)
        val = np.bincount(ref_sent, weights=np.minimum(hw, rw) * rw, minlength=len(ref_image))
        denom = norm[:num][ref_image] * norm[num:]
        val = np.where(denom != 0, val / np.where(denom != 0, denom, 1.0), val)
        total += val * penalty
    per_image = np.bincount(ref_image, weights=total, minlength=num)
    return per_image / n / refs_per_image * 10.0


def caption_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Every coco-caption score of tokenised captions: corpus values and one dict per image.

    Keys ``bleu_1``..``bleu_4``, ``rouge_l``, ``cider`` (CIDEr-D), as
    coco-caption's ``eval`` and ``imgToEval``. The one entry point that both
    ``polymodal score captions`` and the in-run ``CaptionScores`` metric use.
    """
    _check(candidates, references)
    if not candidates:
        b, c = bleu(candidates, references), cider_d(candidates, references)
    else:  # one n-gram index serves both corpus metrics
        indexed = _index(candidates, references, NGRAM_ORDER)
        b = _bleu(indexed, len(candidates), NGRAM_ORDER)
        c = _cider_d(indexed, len(candidates), NGRAM_ORDER, CIDER_SIGMA)
    r = [rouge_l(c, rs) for c, rs in zip(candidates, references)]
    summary = {f"bleu_{k + 1}": float(v) for k, v in enumerate(b.corpus)}
    summary["rouge_l"] = float(np.mean(r)) if r else 0.0
    summary["cider"] = float(c.mean()) if len(c) else 0.0
    names = [f"bleu_{k + 1}" for k in range(b.per_image.shape[1])]
    per_image = [{**dict(zip(names, map(float, b.per_image[i]))), "rouge_l": float(r[i]), "cider": float(c[i])}
                 for i in range(len(candidates))]
    return summary, per_image
