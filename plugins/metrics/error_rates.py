"""Word and character error rates, torch-free, counted exactly as ``jiwer`` counts them.

This is the kernel that both the torchmetrics classes (``asr.py``) and the
offline ``polymodal score wer|cer`` command use; it imports neither torch nor
numpy, so scoring two JSONL files starts in a fraction of a second.

Corpus-level, as jiwer: ``rate = sum(edit distances) / sum(reference lengths)``.
The Levenshtein distance between two token lists does not depend on which
minimal alignment is chosen, so summing per-utterance distances gives exactly
jiwer's ``S + D + I`` and the totals add up across batches and processes.

Tokenisation without normalisation is jiwer's default transform:

* words: runs of two or more whitespace characters become one space, the text
  is stripped, and words are what ``split(" ")`` leaves (jiwer's ``wer_default``);
* characters: the text is stripped and every character, spaces included,
  is a token (jiwer's ``cer_default``).

The documented normalisation (:class:`Normalization`) runs first, in jiwer's
order and with jiwer's character sets: lower-case (``ToLowerCase``); remove
every Unicode ``P*`` character (``RemovePunctuation``); turn every
``string.whitespace`` character into a space and collapse runs
(``RemoveWhiteSpace(replace_by_space=True)`` + ``RemoveMultipleSpaces``).
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
from collections.abc import Iterable, Sequence

import attrs
from rapidfuzz.distance import Levenshtein

_MULTI_SPACE = re.compile(r"\s\s+")


@functools.lru_cache(1)
def _punctuation_table() -> dict[int, None]:
    """Every code point whose Unicode category starts with ``P`` (jiwer's set), mapped to deletion."""
    return {i: None for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}


_WHITESPACE_TABLE = {ord(c): " " for c in string.whitespace}


@attrs.frozen
class Normalization:
    """Which text normalisations run before counting; all off is jiwer's default."""

    lowercase: bool = False
    remove_punctuation: bool = False
    collapse_whitespace: bool = False

    @classmethod
    def standard(cls) -> Normalization:
        """``--normalize``: lower-case, no punctuation, single spaces."""
        return cls(True, True, True)

    def apply(self, text: str) -> str:
        if self.lowercase:
            text = text.lower()
        if self.remove_punctuation:
            text = text.translate(_punctuation_table())
        if self.collapse_whitespace:
            text = _MULTI_SPACE.sub(" ", text.translate(_WHITESPACE_TABLE))
        return text


def words(text: str, norm: Normalization = Normalization()) -> list[str]:
    """The word tokens jiwer's ``wer_default`` makes of ``text`` (after ``norm``)."""
    text = _MULTI_SPACE.sub(" ", norm.apply(text)).strip()
    return [w for w in text.split(" ") if w]


def characters(text: str, norm: Normalization = Normalization()) -> list[str]:
    """The character tokens jiwer's ``cer_default`` makes of ``text`` (after ``norm``), spaces included."""
    return list(norm.apply(text).strip())


TOKENIZERS = {"wer": words, "cer": characters}


@attrs.frozen
class ErrorCounts:
    """Summed edit distance and summed reference length; ``rate`` is their ratio."""

    errors: int = 0
    reference_length: int = 0
    utterances: int = 0

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(self.errors + other.errors, self.reference_length + other.reference_length,
                           self.utterances + other.utterances)

    @property
    def rate(self) -> float:
        if self.reference_length == 0:
            raise ValueError("every reference is empty after normalisation: the error rate is undefined")
        return self.errors / self.reference_length


def count_errors(references: Sequence[str], predictions: Sequence[str], unit: str = "wer",
                 norm: Normalization = Normalization()) -> ErrorCounts:
    """Edit-distance totals of ``predictions`` against ``references`` (aligned lists) in ``unit`` tokens."""
    if isinstance(references, str) or isinstance(predictions, str):
        raise TypeError("references and predictions must be lists of strings, not a single string")
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    tokenize = TOKENIZERS[unit]
    errors = length = 0
    for i, (ref, hyp) in enumerate(zip(references, predictions)):
        if not isinstance(ref, str) or not isinstance(hyp, str):
            raise TypeError(f"item {i}: references and predictions must be strings")
        r, h = tokenize(ref, norm), tokenize(hyp, norm)
        errors += Levenshtein.distance(r, h)
        length += len(r)
    return ErrorCounts(errors, length, len(references))


def error_rate(references: Iterable[str], predictions: Iterable[str], unit: str = "wer",
               norm: Normalization = Normalization()) -> float:
    """Corpus WER (``unit="wer"``) or CER (``unit="cer"``), equal to ``jiwer.wer`` / ``jiwer.cer``."""
    return count_errors(list(references), list(predictions), unit, norm).rate
