"""Modality traits: the facts about a modality that evaluation axes need.

An axis never asks "is this field an image?". It asks the field's modality
for its :class:`ModalityTraits` (a ``traits`` attribute on the object a
``modalities`` plugin builds) and works from those facts: whether the
model's input is continuous and can be perturbed directly, how values were
normalised, which dimensions are space or time (for occlusion and heatmaps),
whether raw samples are strings or pictures. A third-party modality that
declares its traits gets every axis that its traits allow, and a clear
"not applicable, because ..." where one is missing.

Dimension indices refer to *one sample's* row of the collated batch
(``ModalityBatch.data[b]``, what encoders see), e.g. ``[C, H, W]`` for an
image has ``channel_dim=0, space_dims=(1, 2)``; ``[T, C, H, W]`` frames
have ``time_dims=(0,)`` as well.
"""

from __future__ import annotations

from typing import Any

import attrs


def _dims(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


@attrs.frozen
class ModalityTraits:
    """What a modality declares about its values (see the module docs)."""

    #: The preprocessed tensor holds real values (pixels, features), not token ids.
    continuous: bool = False
    #: Gradient attacks and feature attribution may act on the preprocessed tensor itself.
    perturb_input: bool = False
    #: Discrete input that can be perturbed through the encoder's input embedding instead.
    perturb_embedding: bool = False
    #: The range of the *unnormalised* values (e.g. ``(0.0, 1.0)`` for pixels); attacks stay inside it.
    value_range: tuple[float, float] | None = attrs.field(default=None, converter=lambda v: None if v is None else (float(v[0]), float(v[1])))
    #: The preprocessed tensor is ``(x - mean) / std`` per channel; the modality then offers
    #: ``normalisation() -> (mean, std)`` (sequences, one value per channel along ``channel_dim``).
    normalised: bool = False
    #: The per-sample dimension holding channels (summed over for per-position importance), if any.
    channel_dim: int | None = None
    #: Per-sample dimensions that are space (occlusion patches, heatmaps).
    space_dims: tuple[int, ...] = attrs.field(default=(), converter=_dims)
    #: Per-sample dimensions that are time (frames, audio frames).
    time_dims: tuple[int, ...] = attrs.field(default=(), converter=_dims)
    #: Raw values (what ``load`` returns) are strings: captions, prompts, class-name templates.
    textual: bool = False
    #: Raw values are pictures that can be shown (and generated images fed back in as ``H x W x 3`` uint8).
    pictorial: bool = False
    #: The format of raw values, which decides which registered corruptions apply (e.g. ``rgb``, ``text``).
    raw_format: str = ""
    #: How classification over this modality is named in task rows (e.g. ``video``); None: ``classification``.
    task: str | None = None
    #: How ``polymodal data preview`` shows a raw value: ``image`` (PIL image or ``[H, W(, C)]`` array),
    #: ``frames`` (a list of pictures or ``[N, H, W(, C)]``), ``audio`` (an object with ``samples`` and
    #: ``sample_rate``, e.g. :class:`polymodal.data.AudioClip`) or ``text``; empty: ``image`` for a
    #: ``pictorial`` modality, else text.
    preview: str = ""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self, value_serializer=lambda _i, _a, v: list(v) if isinstance(v, tuple) else v)


#: What a modality that declares nothing is taken to be: no axis may assume anything about it.
UNKNOWN = ModalityTraits()


def traits_of(modality: Any) -> ModalityTraits:
    """The declared traits of a modality object (or :data:`UNKNOWN` when it declares none)."""
    traits = getattr(modality, "traits", None)
    return traits if isinstance(traits, ModalityTraits) else UNKNOWN


def normalisation(modality: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` per channel of a ``normalised`` modality, or None."""
    if not traits_of(modality).normalised:
        return None
    get = getattr(modality, "normalisation", None)
    if not callable(get):
        return None
    mean, std = get()
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def not_applicable(what: str, field: str, modality: Any, trait: str) -> str:
    """The one-line reason an axis skips ``what`` for ``field``: its modality lacks ``trait``."""
    name = getattr(modality, "name", "?")
    return f"{what} is not applicable to field {field!r}, because its modality {name!r} does not declare {trait}"
