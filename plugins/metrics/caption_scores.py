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
from collections import Counter
from collections.abc import Sequence

import attrs

NGRAM_ORDER = 4
CIDER_SIGMA = 6.0


def _ngram_counts(words: Sequence[str], n: int = NGRAM_ORDER) -> list[Counter]:
    """Per order k (index k-1), the counts of k-grams of ``words``."""
    counts = [Counter(words)]
    for k in range(2, n + 1):
        counts.append(Counter(zip(*(words[i:] for i in range(k)))))
    return counts


@attrs.frozen
class BleuResult:
    """Corpus BLEU-1..4 and the per-image values coco-caption also reports."""

    corpus: tuple[float, ...]
    per_image: tuple[tuple[float, ...], ...]


def bleu(candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = NGRAM_ORDER) -> BleuResult:
    """Corpus BLEU-1..n of tokenised candidates against their references."""
    tiny, small = 1e-15, 1e-9
    total_correct = [0] * n
    total_guess = [0] * n
    total_test = 0
    total_ref = 0
    per_image: list[tuple[float, ...]] = []
    for cand, refs in zip(candidates, references, strict=True):
        words = cand.split()
        testlen = len(words)
        maxcounts: list[dict] = [{} for _ in range(n)]
        reflens = []
        for ref in refs:
            rwords = ref.split()
            reflens.append(len(rwords))
            for k, counts in enumerate(_ngram_counts(rwords, n)):
                mk = maxcounts[k]
                for g, c in counts.items():
                    if c > mk.get(g, 0):
                        mk[g] = c
        reflen = min((abs(length - testlen), length) for length in reflens)[1]
        correct = [0] * n
        for k, counts in enumerate(_ngram_counts(words, n)):
            mk = maxcounts[k]
            correct[k] = sum(min(c, mk.get(g, 0)) for g, c in counts.items())
        guess = [max(0, testlen - k) for k in range(n)]
        total_test += testlen
        total_ref += reflen
        scores = []
        prod = 1.0
        for k in range(n):
            total_correct[k] += correct[k]
            total_guess[k] += guess[k]
            prod *= (correct[k] + tiny) / (guess[k] + small)
            scores.append(prod ** (1.0 / (k + 1)))
        ratio = (testlen + tiny) / (reflen + small)
        if ratio < 1:
            bp = math.exp(1 - 1 / ratio)
            scores = [s * bp for s in scores]
        per_image.append(tuple(scores))
    corpus = []
    prod = 1.0
    for k in range(n):
        prod *= (total_correct[k] + tiny) / (total_guess[k] + small)
        corpus.append(prod ** (1.0 / (k + 1)))
    ratio = (total_test + tiny) / (total_ref + small)
    if ratio < 1:
        bp = math.exp(1 - 1 / ratio)
        corpus = [s * bp for s in corpus]
    return BleuResult(tuple(corpus), tuple(per_image))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004).

    One big-integer update per token of ``b`` instead of a ``len(a) x len(b)``
    table: the reason ROUGE-L here is fast.
    """
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        m = masks.get(tok, 0)
        u = v & m
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l(candidate: str, refs: Sequence[str], beta: float = 1.2) -> float:
    """ROUGE-L of one tokenised candidate against its references (coco-caption rules)."""
    tc = candidate.split(" ")
    prec_max = 0.0
    rec_max = 0.0
    for ref in refs:
        tr = ref.split(" ")
        lcs = lcs_length(tr, tc)
        prec_max = max(prec_max, lcs / len(tc))
        rec_max = max(rec_max, lcs / len(tr))
    if prec_max != 0 and rec_max != 0:
        return ((1 + beta**2) * prec_max * rec_max) / (rec_max + beta**2 * prec_max)
    return 0.0


def _tfidf(counts: list[Counter], df: dict, log_n: float) -> tuple[list[dict], list[float]]:
    vecs: list[dict] = []
    norms: list[float] = []
    for counts_k in counts:
        vec = {}
        sq = 0.0
        for g, tf in counts_k.items():
            w = tf * (log_n - math.log(max(1.0, df.get(g, 0.0))))
            vec[g] = w
            sq += w * w
        vecs.append(vec)
        norms.append(math.sqrt(sq))
    return vecs, norms


def cider_d(
    candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = NGRAM_ORDER, sigma: float = CIDER_SIGMA
) -> list[float]:
    """Per-image CIDEr-D of tokenised candidates; the corpus score is their mean.

    Document frequencies come from ``references`` (the whole corpus), so call
    this once with every image, never per batch.
    """
    ref_counts = [[_ngram_counts(r.split(), n) for r in refs] for refs in references]
    df: dict = {}
    for image_refs in ref_counts:
        seen = set()
        for counts in image_refs:
            for counts_k in counts:
                seen.update(counts_k)
        for g in seen:
            df[g] = df.get(g, 0.0) + 1.0
    if len(ref_counts) == 0:
        return []
    log_n = math.log(float(len(ref_counts)))
    two_sigma_sq = 2 * sigma**2
    scores: list[float] = []
    for cand, image_refs in zip(candidates, ref_counts, strict=True):
        words = cand.split()
        hyp_vec, hyp_norm = _tfidf(_ngram_counts(words, n), df, log_n)
        hyp_len = max(len(words) - 1, 0)  # the reference counts bigrams as "length"
        total = [0.0] * n
        for counts in image_refs:
            ref_vec, ref_norm = _tfidf(counts, df, log_n)
            ref_len = sum(counts[1].values()) if n > 1 else 0
            penalty = math.exp(-((hyp_len - ref_len) ** 2) / two_sigma_sq)
            for k in range(n):
                rv = ref_vec[k]
                val = 0.0
                for g, w in hyp_vec[k].items():
                    r = rv.get(g, 0.0)
                    val += min(w, r) * r
                if hyp_norm[k] != 0 and ref_norm[k] != 0:
                    val /= hyp_norm[k] * ref_norm[k]
                total[k] += val * penalty
        scores.append(sum(total) / n / len(image_refs) * 10.0)
    return scores
