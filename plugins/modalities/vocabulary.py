"""A word-level vocabulary for small from-scratch text models.

Tokenisation is deterministic and language-aware enough for captions:
Latin words and numbers are tokens, each CJK character is a token (Chinese
has no spaces), punctuation marks are tokens. The vocabulary is fitted on
training texts only and saved as JSON (never pickle), so evaluation reuses
exactly the ids the model was trained with.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import attrs

from polymodal.errors import DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+|[^\w\s]", re.UNICODE)


def tokenize(text: str, lowercase: bool = True, limit: int | None = None) -> list[str]:
    """Split ``text`` into word, CJK-character and punctuation tokens (the first ``limit`` only).

    With a ``limit`` the scan stops early, so a hostile 10-million-token
    caption costs no more memory than ``limit`` tokens.
    """
    matches = _TOKEN.finditer(text.lower() if lowercase else text)
    if limit is not None:
        matches = itertools.islice(matches, max(0, limit))
    return [m.group() for m in matches]


@attrs.define
class Vocabulary:
    """Token <-> id mapping; ids 0..3 are ``<pad> <unk> <bos> <eos>``."""

    tokens: list[str] = attrs.field(factory=lambda: list(SPECIALS))
    lowercase: bool = True
    _index: dict[str, int] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if list(self.tokens[: len(SPECIALS)]) != list(SPECIALS):
            raise DataError(f"vocabulary must start with the special tokens {list(SPECIALS)}")
        if len(set(self.tokens)) != len(self.tokens):
            raise DataError("vocabulary has duplicate tokens")
        self._index = {t: i for i, t in enumerate(self.tokens)}

    pad_id = 0
    unk_id = 1
    bos_id = 2
    eos_id = 3

    @classmethod
    def fit(cls, texts: Iterable[str], *, min_freq: int = 1, max_size: int | None = None,
            lowercase: bool = True) -> Vocabulary:
        """Most frequent tokens first (ties alphabetical, so fitting is deterministic)."""
        counts: Counter[str] = Counter()
        for text in texts:
            # an iterator, so a huge text is counted without materialising its token list
            counts.update(m.group() for m in _TOKEN.finditer(text.lower() if lowercase else text))
        words = sorted((w for w, c in counts.items() if c >= min_freq and w not in SPECIALS),
                       key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls([*SPECIALS, *words], lowercase=lowercase)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, *, max_length: int | None = None, add_special: bool = True) -> list[int]:
        # Only the tokens that can survive truncation are tokenised (bounded memory).
        limit = None if max_length is None else max_length + 1
        ids = [self._index.get(t, self.unk_id) for t in tokenize(text, self.lowercase, limit)]
        if add_special:
            ids = [self.bos_id, *ids, self.eos_id]
        if max_length is not None and len(ids) > max_length:
            ids = ids[:max_length]
            if add_special and max_length >= 2:
                ids[-1] = self.eos_id
        return ids

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id and skip_special:
                break
            if skip_special and i in (self.pad_id, self.bos_id):
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
        # CJK characters were split without spaces; join them back without spaces.
        text = ""
        for tok in out:
            if text and not (_is_cjk(tok) and _is_cjk(text[-1])):
                text += " "
            text += tok
        return text

    def to_json(self) -> dict:
        return {"format": "polymodal-vocabulary", "version": 1, "lowercase": self.lowercase, "tokens": self.tokens}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{p}: vocabulary file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise DataError(f"{p}: not a JSON vocabulary: {type(exc).__name__}") from None
        if not isinstance(data, dict) or data.get("format") != "polymodal-vocabulary" or not isinstance(
            data.get("tokens"), list
        ) or not all(isinstance(t, str) for t in data["tokens"]):
            raise DataError(f"{p}: not a polymodal vocabulary (expected format 'polymodal-vocabulary' with a token list)")
        try:
            return cls(list(data["tokens"]), lowercase=bool(data.get("lowercase", True)))
        except DataError as exc:
            raise DataError(f"{p}: {exc}") from None


def _is_cjk(ch: str) -> bool:
    return len(ch) == 1 and bool(_TOKEN.fullmatch(ch)) and "\u3400" <= ch <= "\ufaff"
