"""The text modality: captions -> token ids ``[T]``; a batch is ``[B, T]`` + mask.

Two tokenisers: a transformers tokenizer (``tokenizer=`` hub id or local
directory; remote code only with ``trust_remote_code=True``), or the built-in
word-level :class:`Vocabulary` fitted on training texts (``fit``) or loaded
from JSON (``vocab=``). An encoder can choose the tokenizer through its
``preprocess_config()`` (``{"tokenizer": ...}``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.batch import ModalityBatch
from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal.traits import ModalityTraits
from polymodal_plugins.modalities.vocabulary import Vocabulary

#: Longer captions are cut before tokenising so a hostile 10-million-token
#: caption costs no more than a long one.
CHARS_PER_TOKEN_BOUND = 64


class TextModality:
    """Token ids; ``collate`` pads to the longest sample (at most ``max_length``)."""

    name = "text"
    traits = ModalityTraits(perturb_embedding=True, time_dims=(0,), textual=True, raw_format="text")

    def __init__(
        self,
        max_length: int = 32,
        tokenizer: str | None = None,
        vocab: str | os.PathLike[str] | Vocabulary | None = None,
        lowercase: bool = True,
        min_freq: int = 1,
        max_vocab: int | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        if max_length < 1:
            raise DataError(f"text max_length must be >= 1, got {max_length}")
        self.max_length = int(max_length)
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.trust_remote_code = trust_remote_code
        self.tokenizer_name = tokenizer
        self._tokenizer: Any = None
        self.vocab: Vocabulary | None = None
        if tokenizer is not None:
            self._tokenizer = self._load_tokenizer(tokenizer)
        elif isinstance(vocab, Vocabulary):
            self.vocab = vocab
        elif vocab is not None:
            self.vocab = Vocabulary.load(vocab)

    def _load_tokenizer(self, name: str) -> Any:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(name, trust_remote_code=self.trust_remote_code)
        except Exception as exc:  # noqa: BLE001 - hub/offline/format errors all surface here
            raise DataError(
                f"text: cannot load tokenizer {name!r} (a hub id available offline or a local directory): "
                f"{type(exc).__name__}: {exc}"
            ) from None

    @property
    def needs_fit(self) -> bool:
        """True until a tokenizer or vocabulary is available."""
        return self._tokenizer is None and self.vocab is None

    @property
    def vocab_size(self) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer)
        if self.vocab is None:
            raise DataError("text modality has no vocabulary yet: call fit(train_texts), pass vocab=, or set tokenizer=")
        return len(self.vocab)

    @property
    def pad_id(self) -> int:
        if self._tokenizer is not None:
            return int(self._tokenizer.pad_token_id or 0)
        return Vocabulary.pad_id

    def fit(self, texts: Iterable[str]) -> Vocabulary:
        """Build the word vocabulary from (training) texts."""
        if self._tokenizer is not None:
            raise DataError("text modality uses a transformers tokenizer; it has no vocabulary to fit")
        self.vocab = Vocabulary.fit(texts, min_freq=self.min_freq, max_size=self.max_vocab, lowercase=self.lowercase)
        return self.vocab

    def save_vocab(self, path: str | Path) -> Path:
        if self.vocab is None:
            raise DataError("text modality has no fitted vocabulary to save")
        return self.vocab.save(path)

    def configure(self, preprocess_config: Mapping[str, Any]) -> TextModality:
        """Use the encoder's tokenizer (``{"tokenizer": ..., "max_length": ...}``) when it names one; changes and returns ``self``."""
        tok = preprocess_config.get("tokenizer")
        max_length = int(preprocess_config.get("max_length", self.max_length))
        if tok is None:
            if max_length == self.max_length:
                return self
            out = TextModality(max_length, vocab=self.vocab, lowercase=self.lowercase, min_freq=self.min_freq,
                               max_vocab=self.max_vocab)
        else:
            out = TextModality(max_length, tokenizer=tok, trust_remote_code=self.trust_remote_code)
        # In place: a caller that ignores the return value must not keep the old preprocessing (issue 18).
        self.__dict__.update(out.__dict__)
        return self

    def load(self, value: Any, root: str | os.PathLike[str] | None = None) -> str:
        """A caption string, or a ``.txt`` file path given as ``{"path": ...}``."""
        if isinstance(value, Mapping) and "path" in value:
            path = resolve_inside(root, value["path"])
            try:
                with open(path, encoding="utf-8") as fh:
                    value = fh.read(self.max_length * CHARS_PER_TOKEN_BOUND)
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"{path}: cannot read text: {exc}") from None
        if not isinstance(value, str):
            raise DataError(f"text: expected a string, got {type(value).__name__}")
        if not value.strip():
            raise DataError("empty caption")
        return value[: self.max_length * CHARS_PER_TOKEN_BOUND]

    def preprocess(self, raw: str) -> torch.Tensor:
        if self._tokenizer is not None:
            ids = self._tokenizer(raw, truncation=True, max_length=self.max_length)["input_ids"]
        else:
            if self.vocab is None:
                raise DataError(
                    "text modality has no vocabulary: call fit(train_texts) (polymodal.data.fit_modalities), "
                    "pass vocab=PATH, or set tokenizer="
                )
            ids = self.vocab.encode(raw, max_length=self.max_length)
        return torch.tensor(ids, dtype=torch.long)

    def preprocess_batch(self, raws: Sequence[str | None]) -> ModalityBatch | None:
        """Word-vocabulary ids of a batch, padded straight into one array (None with a transformers tokenizer).

        The ids and padding of ``preprocess`` + ``collate``, without a tensor per caption.
        """
        if self._tokenizer is not None or self.vocab is None:
            return None
        ids = [None if r is None else self.vocab.encode(r, max_length=self.max_length) for r in raws]
        length = max([len(v) for v in ids if v is not None] or [1])
        data = np.full((len(raws), length), self.pad_id, dtype=np.int64)
        lengths = np.zeros(len(raws), dtype=np.int64)
        for i, row in enumerate(ids):
            if row:
                data[i, : len(row)] = row
                lengths[i] = len(row)
        mask = torch.from_numpy(np.arange(length)[None, :] < lengths[:, None])
        return ModalityBatch(torch.from_numpy(data), mask, {"modality": self.name, "pad_id": self.pad_id})

    def collate(self, values: Sequence[torch.Tensor | None]) -> ModalityBatch:
        """``[B, T]`` ids padded with the pad id; mask true on real tokens."""
        length = max([len(v) for v in values if v is not None] or [1])
        data = torch.full((len(values), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(values), length, dtype=torch.bool)
        for i, v in enumerate(values):
            if v is not None and len(v):
                data[i, : len(v)] = v
                mask[i, : len(v)] = True
        return ModalityBatch(data, mask, {"modality": self.name, "pad_id": self.pad_id})

    def describe(self) -> dict[str, Any]:
        return {
            "modality": self.name,
            "max_length": self.max_length,
            "tokenizer": self.tokenizer_name or ("word-vocabulary" if self.vocab is not None else None),
            "vocab_size": None if self.needs_fit else self.vocab_size,
            "pad_id": self.pad_id,
            # The word list and marker ids let generative models (captioner) turn ids back into
            # text, and travel in checkpoints with the rest of the field description.
            **({"vocab": list(self.vocab.tokens),
                "special_ids": [Vocabulary.pad_id, Vocabulary.unk_id, Vocabulary.bos_id, Vocabulary.eos_id]}
               if self._tokenizer is None and self.vocab is not None else {}),
        }
