"""How the generative models (captioner, text-to-image) find their data fields.

Both read one image field and one text field from a :class:`~polymodal.batch.Batch`
and need facts the modalities fix (vocabulary, padding id, image size and
normalisation). Those facts arrive in :class:`polymodal.model_api.FieldInfo`
``params``; this module reads them with errors that name the config key.

Facts read from a text field's ``params``: ``vocab_size`` (required),
``pad_id`` (default 0), ``vocab`` (list of token strings, needed to return
captions as text) and ``special_ids`` (ids never printed nor learned as caption words, e.g. the
tokenizer's own BOS/EOS). From an image field: ``size`` (``[h, w]``) or
``image_size``, ``channels`` and, when
the modality normalises pixels, ``mean``/``std`` (per channel), which are
undone so reconstruction targets and generated images are in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from polymodal.errors import ConfigError
from polymodal.model_api import ModelConfig
from polymodal.model_api import FieldInfo, ModelContext


def pick_field(config: ModelConfig, ctx: ModelContext, key: str, modality: str, name: str | None) -> FieldInfo:
    """The field ``name`` (the validated ``model.params.<key>``), else the only field of ``modality``
    (or, among several, the one named after the modality)."""
    if name is not None:
        return ctx.field(name)
    candidates = [f for f in ctx.fields.values() if f.modality == modality]
    if len(candidates) > 1 and modality in ctx.fields and ctx.fields[modality].modality == modality:
        return ctx.fields[modality]  # e.g. ``text`` next to ``text_zh``: the field named after its modality
    if len(candidates) != 1:
        found = ", ".join(f"{f.name} ({f.modality})" for f in ctx.fields.values()) or "none"
        raise ConfigError(
            f"{ctx.source}: model.params.{key}: model {config.name!r} needs one {modality} field; "
            f"the dataset has {found}; set model.params.{key}"
        )
    return candidates[0]


@attrs.frozen
class Vocabulary:
    """Token ids <-> text for a text field (what captions are decoded with)."""

    size: int
    pad_id: int = 0
    tokens: tuple[str, ...] | None = None
    special_ids: frozenset[int] = frozenset()

    @classmethod
    def from_field(cls, info: FieldInfo, source: str) -> Vocabulary:
        p = info.params
        size = p.get("vocab_size", len(p["vocab"]) if isinstance(p.get("vocab"), Sequence) else None)
        if not isinstance(size, int) or size <= 1:
            raise ConfigError(
                f"{source}: text field {info.name!r} does not declare its vocabulary (params.vocab_size or "
                f"params.vocab); the captioner and text-to-image models need token ids"
            )
        tokens = tuple(str(t) for t in p["vocab"]) if p.get("vocab") is not None else None
        if tokens is not None and len(tokens) != size:
            raise ConfigError(f"{source}: text field {info.name!r}: vocab has {len(tokens)} tokens, vocab_size is {size}")
        pad = int(p.get("pad_id", 0))
        specials = frozenset(int(i) for i in p.get("special_ids", ())) | {pad}
        return cls(size, pad, tokens, specials)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a token id sequence, without padding or special tokens."""
        words = [i for i in ids if 0 <= i < self.size and i not in self.special_ids]
        if self.tokens is None:
            # No vocabulary list was provided: ids are the only faithful rendering.
            return " ".join(f"<{i}>" for i in words)
        return " ".join(self.tokens[i] for i in words)


def pixel_range(info: FieldInfo) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, std)`` as ``[1, C, 1, 1]`` tensors when the image modality normalises pixels."""
    mean, std = info.params.get("mean"), info.params.get("std")
    if mean is None or std is None:
        return None
    return (torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1),
            torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))


def image_size(info: FieldInfo, source: str) -> int:
    """Square image side of an image field (``size = [h, w]`` or ``image_size``), default 32."""
    size = info.params.get("size", info.params.get("image_size", 32))
    if isinstance(size, (list, tuple)):
        if len(size) != 2 or size[0] != size[1]:
            raise ConfigError(f"{source}: image field {info.name!r} has size {list(size)}; "
                              "the text-to-image decoder makes square images (set model.params.image_size)")
        size = size[0]
    return int(size)
