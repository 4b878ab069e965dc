"""Parameters of the built-in models (``[model] params = {...}``).

Each model declares its options here as an ``attrs`` class, registered
lazily with ``params="polymodal_plugins.models.params:<Class>"``: suites are
checked against them (unknown keys with a did-you-mean, wrong types named)
before anything trains, and ``polymodal info model <name>`` lists them with
their defaults. Light on purpose (attrs only, no torch). ``None`` defaults
mean "read from the data" (the only field of a modality, the modality's
image size ...).
"""

from __future__ import annotations

from typing import Any

import attrs

from polymodal.model_api import MOVED_FROM_MODEL

#: Marks a parameter that plugin API 1 files set as a top-level ``[model]`` key.
_MOVED = {MOVED_FROM_MODEL: True}


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _dropout(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


@attrs.frozen
class FusionClassifierParams:
    """The fusion classifier is configured by ``model.fusion``, ``fusion_params`` and ``[model.head]``."""


@attrs.frozen
class DualEncoderParams:
    """CLIP-style joint embedding of two fields."""

    #: Shared embedding size.
    embed_dim: int = attrs.field(default=128, validator=_positive, metadata=_MOVED)
    #: Initial softmax temperature.
    temperature: float = attrs.field(default=0.07, validator=_positive, metadata=_MOVED)
    learn_temperature: bool = attrs.field(default=True, metadata=_MOVED)
    #: The two fields to align; default: the first two encoder fields.
    pair: list[str] | None = attrs.field(default=None, metadata=_MOVED)


@attrs.frozen
class CoLearningParams:
    """Unimodal classifiers trained together: ``L = L_ce + lambda * L_sim``."""

    #: Weight of the similarity term (written ``lambda`` in TOML).
    lambda_: float = attrs.field(default=0.5, validator=_non_negative, metadata=_MOVED)


@attrs.frozen
class HFClipParams:
    """A transformers CLIP-style dual encoder (CLIPModel, SiglipModel) from a hub id or a local folder."""

    #: Hub id or local folder.
    model: str
    image_field: str = "image"
    text_field: str = "text"
    local_files_only: bool = True
    max_length: int = attrs.field(default=77, validator=_positive)
    #: One prompt per class for zero-shot classification; default: ``prompt`` over the label names.
    class_prompts: list[str] | None = None
    prompt: str = "a photo of a {}"
    revision: str | None = None
    #: ``"longest"`` or ``"max_length"``; default: ``max_length`` for sigmoid-scored checkpoints (SigLIP).
    text_padding: str | None = None


@attrs.frozen
class CaptionerParams:
    """CNN image encoder + LSTM decoder with additive attention."""

    image_field: str | None = None
    caption_field: str | None = None
    hidden: int = attrs.field(default=256, validator=_positive)
    embed_dim: int = attrs.field(default=128, validator=_positive)
    attn_dim: int = attrs.field(default=128, validator=_positive)
    #: Feature size of the default CNN (when the image field has no encoder table).
    feature_dim: int = attrs.field(default=128, validator=_positive)
    cnn_width: int = attrs.field(default=32, validator=_positive)
    cnn_depth: int = attrs.field(default=3, validator=_positive)
    dropout: float = attrs.field(default=0.1, validator=_dropout)
    max_len: int = attrs.field(default=20, validator=_positive)
    beam_size: int = attrs.field(default=1, validator=_positive)
    length_penalty: float = 0.0


@attrs.frozen
class TextToImageParams:
    """Text encoder -> pixel-shuffle upsampling decoder."""

    text_field: str | None = None
    image_field: str | None = None
    #: Default: the image field's size, else 32.
    image_size: int | None = attrs.field(default=None, validator=_positive)
    #: Default: the image field's channels, else 3.
    channels: int | None = attrs.field(default=None, validator=_positive)
    width: int = attrs.field(default=16, validator=_positive)
    text_dim: int = attrs.field(default=128, validator=_positive)
    text_layers: int = attrs.field(default=2, validator=_positive)
    #: Default: the text field's max_length, else 64.
    max_len: int | None = attrs.field(default=None, validator=_positive)
    #: ``mse`` or ``l1`` reconstruction loss.
    loss: str = "mse"


@attrs.frozen
class HFWhisperParams:
    """A transformers Whisper from a hub id or a local folder, transcribing an audio field."""

    #: Hub id or local folder.
    model: str
    audio_field: str = "audio"
    text_field: str = "text"
    language: str | None = None
    #: ``transcribe`` or ``translate``; None: the checkpoint's default.
    task: str | None = None
    #: Window length of long audio (Whisper sees at most 30 s).
    chunk_seconds: float = 30.0
    max_new_tokens: int = 128
    num_beams: int = 1
    batch_size: int = 16
    local_files_only: bool = True
    revision: str | None = None


def _one_of(*choices: Any):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ValueError(f"{attribute.name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return check


@attrs.frozen
class HFVLMParams:
    """A transformers image-text-to-text model (LLaVA, Qwen2-VL, Idefics3, ...) from a hub id or a local folder."""

    #: Hub id or local folder.
    model: str
    image_field: str = "image"
    #: The question (``answer``); captions use ``caption_prompt`` instead.
    text_field: str = "text"
    caption_prompt: str = "Describe the image in one sentence."
    #: Target holding the reference captions (``coco-captions``: ``captions``).
    caption_field: str = "captions"
    #: Wraps a multiple-choice question; ``{question}`` and ``{options}`` (one ``A. text`` line each).
    choice_prompt: str = "{question}\n{options}\nAnswer with the option's letter from the given choices directly."
    #: ``generate`` (reply, then letter extraction) or ``likelihood`` (the option whose text is most likely).
    choice_mode: str = attrs.field(default="generate", validator=_one_of("generate", "likelihood"))
    max_new_tokens: int = attrs.field(default=32, validator=_positive)
    #: 1: greedy decoding; more: beam search.
    num_beams: int = attrs.field(default=1, validator=_positive)
    batch_size: int = attrs.field(default=8, validator=_positive)
    dtype: str = attrs.field(default="float32", validator=_one_of("float32", "bfloat16", "float16"))
    #: ``auto``, ``cpu``, ``cuda:0`` ... or a module -> device table; spreads big checkpoints (needs accelerate).
    device_map: str | dict | None = None
    #: Runs the checkpoint's own Python code; off unless you trust its source.
    trust_remote_code: bool = False
    local_files_only: bool = True
    revision: str | None = None
