"""A pretrained transformers dual encoder (``CLIPModel``, ``SiglipModel``, ...) as a polymodal model.

``[model] name = "hf-clip"`` with ``params = { model = "<hub id or folder>" }``:
any checkpoint ``AutoModel`` loads as a model with ``get_image_features``
and ``get_text_features`` (CLIP, SigLIP, SigLIP 2's fixed-resolution models).
It reads the image field as float images ``[B, 3, H, W]`` in [0, 1] (resized
and normalised in torch from the checkpoint's image processor facts, see
:mod:`.vlm_pixels`, so the result equals the processor's) and the
text field as the raw strings the text modality keeps in
``batch.inputs[text].meta`` (key ``text``, ``raw`` or ``strings``), tokenised
with the checkpoint's own tokenizer: CLIP's vocabulary is not ours.

Loading is offline by default (``local_files_only = true``) and never runs
code from the checkpoint: only classes shipped inside transformers load.
Zero-shot classification uses prompts: ``predict`` needs
``params.class_prompts`` (one string per class) or the dataset's label names
with ``params.prompt = "a photo of a {}"``.

Scores: a checkpoint with a ``logit_bias`` (SigLIP) was trained with a
pairwise *sigmoid* loss, so its image-text logit is
``exp(logit_scale) * cos + logit_bias`` and each pair's probability is
``sigmoid(logit)``, not a softmax over the candidates; the model declares
this as ``pair_activation = "sigmoid"`` (CLIP: ``"softmax"``), ``predict``
returns those logits, and ``loss`` is the matching sigmoid or contrastive
loss. The same checkpoints were trained on text padded to a fixed length and
pool the last token, so their prompts are padded to ``max_length``
(``text_padding``, default: ``"max_length"`` for sigmoid models, else
``"longest"``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from polymodal.batch import Batch
from polymodal.errors import ConfigError, DataError, PolymodalError
from polymodal.model_api import ModelConfig
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel
from polymodal_plugins.models.vlm_pixels import PixelPath

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_TEXT_META_KEYS = ("text", "raw", "strings")


class HFClip(PolymodalModel):
    """A transformers CLIP-style dual encoder (CLIP, SigLIP) behind the polymodal model interface."""

    def __init__(self, config: ModelConfig, ctx: ModelContext):
        super().__init__(config, ctx)
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        p = ctx.params  # HFClipParams, validated by build_model
        self.model_id: str = p.model
        self.image_field: str = p.image_field
        self.text_field: str = p.text_field
        self.max_length: int = p.max_length
        kwargs: dict[str, Any] = {"local_files_only": p.local_files_only}
        if p.revision:
            kwargs["revision"] = p.revision
        try:
            self.clip = AutoModel.from_pretrained(self.model_id, **kwargs)  # remote code: off (the default)
        except (OSError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{ctx.source}: model.params.model: cannot load CLIP from {self.model_id!r}: {first}") from None
        if not all(callable(getattr(self.clip, f, None)) for f in ("get_image_features", "get_text_features")):
            raise ConfigError(f"{ctx.source}: model.params.model: {type(self.clip).__name__} from {self.model_id!r} "
                              "is not an image-text dual encoder (no get_image_features / get_text_features)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_id, **kwargs)
        except (OSError, ValueError, TypeError):
            self.tokenizer = None  # token ids must then come from the batch
        #: ``sigmoid``: each image-text pair is scored on its own (SigLIP); ``softmax``: against the others (CLIP).
        self.pair_activation: str = "sigmoid" if getattr(self.clip, "logit_bias", None) is not None else "softmax"
        self.text_padding: str = p.text_padding or ("max_length" if self.pair_activation == "sigmoid" else "longest")
        if self.text_padding not in ("longest", "max_length"):
            raise ConfigError(f"{ctx.source}: model.params.text_padding: expected 'longest' or 'max_length', "
                              f"got {self.text_padding!r}")
        text_positions = getattr(self.clip.config.text_config, "max_position_embeddings", None)
        if text_positions:
            self.max_length = min(self.max_length, int(text_positions))
        try:
            image_processor = AutoImageProcessor.from_pretrained(self.model_id, **kwargs)
        except (OSError, ValueError, KeyError, TypeError):
            image_processor = None  # a bare checkpoint: bicubic to image_size with mean/std below
        #: The checkpoint's image preprocessing in torch; None: bicubic to ``image_size`` with ``mean``/``std``.
        self.pixels: PixelPath | None = None
        if image_processor is not None:
            found = PixelPath.checked(image_processor)
            if isinstance(found, str):  # e.g. variable-resolution patches: a guess would give wrong embeddings
                raise ConfigError(f"{ctx.source}: model.params.model: {self.model_id!r}: hf-clip cannot reproduce its "
                                  f"image processor in torch: {found}")
            self.pixels = found
        self.image_size = int(self.clip.config.vision_config.image_size)
        mean, std = _normalisation(self.model_id)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.class_prompts = _prompts(p, ctx, config)

    @property
    def input_fields(self) -> tuple[str, ...]:
        return (self.image_field, self.text_field)

    @property
    def embed_fields(self) -> tuple[str, ...]:
        return (self.image_field, self.text_field)

    # -- raw inputs ----------------------------------------------------------
    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of float images ``[B, 3, H, W]`` in [0, 1]."""
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise DataError(f"hf-clip expects images [B, 3, H, W], got shape {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if self.pixels is not None:
            x = self.pixels.values([self.pixels.resize(im.float()) for im in images])["pixel_values"]
            return F.normalize(_tensor(self.clip.get_image_features(pixel_values=x)), dim=-1)
        x = F.interpolate(images.float(), size=(self.image_size, self.image_size), mode="bicubic", align_corners=False)
        x = (x.clamp(0, 1) - self.mean) / self.std
        out = self.clip.get_image_features(pixel_values=x)
        return F.normalize(_tensor(out), dim=-1)

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised embeddings of strings, tokenised by the checkpoint's tokenizer."""
        if self.tokenizer is None:
            raise PolymodalError(f"hf-clip {self.model_id!r} has no tokenizer; cannot embed raw strings")
        tok = self.tokenizer(list(texts), padding=self.text_padding, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        dev = self.mean.device
        # models trained on fixed-length text (SigLIP) take no attention mask: the padding is part of the input
        mask = {"attention_mask": tok["attention_mask"].to(dev)} if self.text_padding == "longest" else {}
        out = self.clip.get_text_features(input_ids=tok["input_ids"].to(dev), **mask)
        return F.normalize(_tensor(out), dim=-1)

    # -- the model interface ---------------------------------------------------
    def embed(self, batch: Batch, field: str) -> torch.Tensor:
        if field == self.image_field:
            return self.embed_images(self._input(batch, field).data)
        if field == self.text_field:
            return self.embed_texts(self._strings(batch, field))
        raise ConfigError(f"{self.source}: hf-clip embeds {self.image_field!r} and {self.text_field!r}, not {field!r}")

    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp()

    def pair_logits(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """``[N_images, N_texts]`` logits of normalised embeddings: scaled cosine, plus the bias of sigmoid models.

        Their probabilities are ``sigmoid`` of these when ``pair_activation`` is
        ``"sigmoid"``, a softmax over the texts otherwise; the argmax is the
        cosine's either way.
        """
        logits = self.logit_scale() * image_emb @ text_emb.t()
        bias = getattr(self.clip, "logit_bias", None)
        return logits + bias if bias is not None else logits

    def predict(self, batch: Batch) -> torch.Tensor:
        """Zero-shot logits: image embedding against one prompt per class."""
        if not self.class_prompts:
            raise ConfigError(
                f"{self.source}: model.params.class_prompts: hf-clip classifies zero-shot from prompts; "
                "give class_prompts or a prompt template with a dataset that names its classes"
            )
        img = self.embed(batch, self.image_field)
        txt = self.embed_texts(self.class_prompts)
        return self.pair_logits(img, txt)

    def loss(self, batch: Batch) -> LossOutput:
        img = self.embed(batch, self.image_field)
        txt = self.embed(batch, self.text_field)
        logits = self.pair_logits(img, txt)
        labels = torch.arange(img.shape[0], device=img.device)
        if self.pair_activation == "sigmoid":  # every pair a binary decision: +1 on the diagonal, -1 elsewhere
            sign = 2 * torch.eye(img.shape[0], device=img.device) - 1
            loss = -F.logsigmoid(sign * logits).sum(-1).mean()
            return loss, {"loss": float(loss.detach())}
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
        return loss, {"loss": float(loss.detach())}

    def _input(self, batch: Batch, field: str) -> Any:
        if field not in batch.inputs:
            raise PolymodalError(f"batch has no field {field!r} (fields: {', '.join(sorted(batch.inputs))})")
        return batch.inputs[field]

    def _strings(self, batch: Batch, field: str) -> list[str]:
        mb = self._input(batch, field)
        for key in _TEXT_META_KEYS:
            value = mb.meta.get(key)
            if isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value):
                return list(value)
        raise PolymodalError(
            f"hf-clip needs the raw strings of field {field!r} in its batch meta "
            f"(one of {', '.join(_TEXT_META_KEYS)}); the text modality did not keep them"
        )


def _tensor(out: Any) -> torch.Tensor:
    """transformers 5 may return a model output instead of a tensor."""
    if isinstance(out, torch.Tensor):
        return out
    for attr in ("pooler_output", "text_embeds", "image_embeds"):
        value = getattr(out, attr, None)
        if isinstance(value, torch.Tensor):
            return value
    raise PolymodalError(f"unexpected CLIP feature output {type(out).__name__}")


def _normalisation(model_id: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std from a local ``preprocessor_config.json``, else OpenAI CLIP's."""
    cfg = Path(model_id) / "preprocessor_config.json"
    if cfg.is_file():
        try:
            data = json.loads(cfg.read_text())
            return tuple(data["image_mean"]), tuple(data["image_std"])
        except (ValueError, KeyError, TypeError):
            pass
    return OPENAI_MEAN, OPENAI_STD


def _prompts(p: Any, ctx: ModelContext, config: ModelConfig) -> list[str]:
    if p.class_prompts is not None:
        return list(p.class_prompts)
    info = ctx.targets.get(config.target)
    if info is not None and info.labels:
        template = p.prompt
        return [template.format(label) for label in info.labels]
    return []
