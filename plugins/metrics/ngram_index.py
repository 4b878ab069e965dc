"""Integer n-gram indexing of a tokenised corpus, for vectorised caption metrics.

Dictionary-per-sentence scorers (like coco-caption's) spend their time in
Python loops. Here each word becomes an integer once, and the n-grams of every
sentence of every order become integer ids with numpy, so counting, clipping
and TF-IDF run as array operations over the whole corpus.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs
import numpy as np


@attrs.frozen
class NgramOccurrences:
    """Every n-gram occurrence of one order: which sentence, which n-gram id, how often.

    Rows are unique ``(sentence, ngram)`` pairs sorted by sentence then id.
    """

    sentence: np.ndarray  # int64 [R]
    ngram: np.ndarray  # int64 [R]
    count: np.ndarray  # float64 [R]
    num_ngrams: int


@attrs.frozen
class IndexedCorpus:
    """Sentence lengths and per-order n-gram occurrences of a list of sentences."""

    lengths: np.ndarray  # int64 [S]
    orders: tuple[NgramOccurrences, ...]


def sorted_unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique values (sorted) and their counts, by one sort.

    ``np.unique`` in numpy 2 takes a hash-based path for plain unique calls that
    is several times slower than sorting on these integer keys.
    """
    v = np.sort(values, kind="stable")
    if v.size == 0:
        return v, np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    counts = np.diff(np.append(starts, v.size))
    return v[starts], counts


def index_sentences(sentences: Sequence[Sequence[str]], n: int = 4) -> IndexedCorpus:
    """Index sentences (lists of tokens); equal n-grams get equal ids across all sentences."""
    all_words = list(itertools.chain.from_iterable(sentences))
    vocab = {w: i for i, w in enumerate(dict.fromkeys(all_words))}
    lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
    total = len(all_words)
    words = np.fromiter(map(vocab.__getitem__, all_words), dtype=np.int64, count=total)
    sent_of_word = np.repeat(np.arange(len(sentences), dtype=np.int64), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(sentences) else np.zeros(0, np.int64)
    pos_in_sent = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    base = max(len(vocab), 1)
    orders = []
    for k in range(1, n + 1):
        # an n-gram starts at word i if the sentence has k-1 more words after it
        valid = pos_in_sent + k <= np.repeat(lengths, lengths)
        first = np.nonzero(valid)[0]
        cols = [words[first + j] for j in range(k)]
        if base ** k < 2**62:
            key = cols[0].copy()
            for c in cols[1:]:
                key = key * base + c
            uniq, ids = np.unique(key, return_inverse=True)
            num = len(uniq)
        else:
            stacked = np.stack(cols, axis=1) if cols[0].size else np.zeros((0, k), np.int64)
            uniq, ids = np.unique(stacked, axis=0, return_inverse=True)
            num = len(uniq)
        ids = ids.reshape(-1).astype(np.int64)
        sent = sent_of_word[first]
        pair = sent * max(num, 1) + ids
        upair, counts = sorted_unique(pair)
        orders.append(
            NgramOccurrences(
                sentence=upair // max(num, 1),
                ngram=upair % max(num, 1),
                count=counts.astype(np.float64),
                num_ngrams=num,
            )
        )
    return IndexedCorpus(lengths=lengths, orders=tuple(orders))
