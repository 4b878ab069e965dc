"""Integer n-gram indexing of a tokenised corpus, for vectorised caption metrics.

Dictionary-per-sentence scorers (like coco-caption's) spend their time in
Python loops. Here each word becomes an integer once, and the n-grams of every
sentence of every order become integer ids with numpy, so counting, clipping
and TF-IDF run as array operations over the whole corpus.

Why it is shaped the way it is (profiled at 5,000 images x 5 references):

* the corpus is split into words by ONE ``str.split`` of the joined text: a
  list per sentence costs several times more, mostly in the garbage collector
  walking the growing heap of lists;
* each order costs ONE stable sort (16-bit radix passes when the keys allow,
  see :func:`_stable_order`): an n-gram's key is its (k-1)-gram's dense id
  times the vocabulary size plus its last word; equal n-grams come out
  adjacent and, within them, in sentence order, so dense ids, per-sentence counts and the
  (n-gram, sentence) rows all fall out of that one sorted array.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

_SENTINEL = "\x00"


@attrs.frozen
class NgramOccurrences:
    """Every n-gram occurrence of one order: which n-gram id, which sentence, how often.

    Rows are unique ``(ngram, sentence)`` pairs sorted by n-gram id, then
    sentence. Ids are dense (``0..num_ngrams-1``) and follow the n-grams' order.
    """

    ngram: np.ndarray  # int64 [R]
    sentence: np.ndarray  # int64 [R]
    count: np.ndarray  # float64 [R]
    num_ngrams: int


@attrs.frozen
class IndexedCorpus:
    """Sentence lengths and per-order n-gram occurrences of a list of sentences."""

    lengths: np.ndarray  # int64 [S]
    orders: tuple[NgramOccurrences, ...]


def _word_ids(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(word ids of the whole corpus, sentence lengths, vocabulary size), words split on whitespace."""
    joined = f" {_SENTINEL} ".join(texts)
    if joined.count(_SENTINEL) != max(len(texts) - 1, 0):  # a text holds the separator: split one by one
        sentences = [t.split() for t in texts]
        words_list = [w for s in sentences for w in s]
        lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        vocab = dict.fromkeys(words_list)
        index = {w: i for i, w in enumerate(vocab)}
        words = np.fromiter(map(index.__getitem__, words_list), dtype=np.int64, count=len(words_list))
        return words, lengths, len(index)
    tokens = joined.split()
    index = {w: i for i, w in enumerate(dict.fromkeys(tokens))}
    ids = np.fromiter(map(index.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    sep = index.get(_SENTINEL, -1)
    is_sep = ids == sep
    cuts = np.flatnonzero(is_sep)
    lengths = np.diff(np.concatenate([[-1], cuts, [len(ids)]])) - 1 if len(texts) else np.zeros(0, np.int64)
    return ids[~is_sep], lengths.astype(np.int64), len(index)


def _stable_order(key: np.ndarray) -> np.ndarray:
    """Indices that sort ``key`` (non-negative int64), equal keys in position order.

    numpy sorts 16-bit integers with a radix sort, several times faster than
    any 64-bit sort, so keys below 2**32 (every order of a COCO-sized corpus)
    go through one or two stable 16-bit passes (least significant digit
    first); wider keys are packed with their position into one int64 and
    sorted, or, when that cannot fit, argsorted stably.
    """
    top = int(key.max()) if key.size else 0
    if top < 1 << 16:
        return np.argsort(key.astype(np.uint16), kind="stable")
    if top < 1 << 32:
        low = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
        return low[np.argsort((key >> 16).astype(np.uint16)[low], kind="stable")]
    bits = int(key.size).bit_length()
    if top >= 1 << (62 - bits):
        return np.argsort(key, kind="stable")
    return np.sort((key << bits) | np.arange(key.size, dtype=np.int64)) & ((1 << bits) - 1)


def index_texts(texts: Sequence[str], n: int = 4) -> IndexedCorpus:
    """Index whitespace-tokenised texts; equal n-grams get equal ids across all of them."""
    words, lengths, vocab_size = _word_ids(texts)
    total = len(words)
    num_sent = len(lengths)
    sent_of_word = np.repeat(np.arange(num_sent, dtype=np.int64), lengths)
    ends = np.cumsum(lengths)
    words_left = np.repeat(ends, lengths) - np.arange(total, dtype=np.int64)  # this word and those after it
    base = max(vocab_size, 1)
    prev = words  # dense ids of the (k-1)-grams starting at each position (k=1: the words)
    orders = []
    for k in range(1, n + 1):
        first = np.flatnonzero(words_left >= k)  # an n-gram starts at i if the sentence has k-1 more words
        key = words[first] if k == 1 else prev[first] * base + words[first + k - 1]
        order = _stable_order(key)
        sorted_key = key[order]
        new_gram = np.empty(sorted_key.size, dtype=bool)
        new_gram[:1] = True
        np.not_equal(sorted_key[1:], sorted_key[:-1], out=new_gram[1:])
        gram_id = np.cumsum(new_gram) - 1
        sent = sent_of_word[first[order]]
        new_row = new_gram.copy()
        new_row[1:] |= sent[1:] != sent[:-1]
        starts = np.flatnonzero(new_row)
        counts = np.diff(np.append(starts, sent.size))
        orders.append(NgramOccurrences(ngram=gram_id[starts], sentence=sent[starts], count=counts.astype(np.float64),
                                       num_ngrams=int(gram_id[-1]) + 1 if gram_id.size else 0))
        nxt = np.zeros(total, dtype=np.int64)
        nxt[first[order]] = gram_id
        prev = nxt
    return IndexedCorpus(lengths=lengths, orders=tuple(orders))
