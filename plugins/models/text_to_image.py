"""Text-to-image: a text encoder and an upsampling decoder built on pixel shuffle.

The caption is encoded into one vector (a small transformer over token
embeddings, masked mean-pooled, or any registered text encoder); the vector is
mapped to a ``4 x 4`` seed feature map that is doubled in resolution by
sub-pixel convolution (``conv -> PixelShuffle(2)``) until it reaches the image
size, and a final convolution gives RGB. It is trained with a pixel
reconstruction loss (L1 or MSE) against the paired image on the unbounded
output; generated images are clamped to [0, 1]. (A sigmoid output saturates
on the mostly black background of simple scenes and stops learning.)

This is a deterministic regressor, not a sampler: for one caption it produces
the conditional mean image, which is what a reconstruction loss learns and
what is measurable on ``shapes`` (does the dominant colour match the caption).

:class:`TextToImageNet` is the tensor-level network; :class:`TextToImage`
adapts it to the platform's model interface.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from polymodal.batch import Batch, Features, ModalityBatch
from polymodal.errors import ConfigError, DataError
from polymodal.model_api import ModelConfig
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel
from polymodal_plugins.models.generative_fields import Vocabulary, image_size, pick_field, pixel_range
from polymodal_plugins.models.params import TextToImageParams

LOSSES = ("l1", "mse")


class TokenTextEncoder(nn.Module):
    """Token embeddings + learned positions + a small transformer encoder -> token features."""

    def __init__(self, vocab_size: int, dim: int = 128, layers: int = 2, heads: int = 4, max_len: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.vocab_size, self.max_len, self.output_dim = vocab_size, max_len, dim

    def forward(self, batch: ModalityBatch) -> Features:
        ids, mask = batch.data.long(), batch.mask.bool()
        if ids.dim() != 2 or mask.shape != ids.shape:
            raise DataError(f"text encoder expects token ids [batch, length] with a same-shaped mask, got {tuple(ids.shape)}")
        if ids.shape[1] > self.max_len:
            raise DataError(f"caption of {ids.shape[1]} tokens is longer than the text encoder's max_len {self.max_len}")
        if ((ids < 0) | (ids >= self.vocab_size))[mask].any():
            raise DataError(f"token id outside the vocabulary (size {self.vocab_size})")
        x = self.embed(torch.where(mask, ids, torch.zeros_like(ids))) + self.pos[: ids.shape[1]]
        # A row with no tokens would make attention all-masked (NaN): let it see its (zero) padding instead.
        pad = ~mask & mask.any(dim=1, keepdim=True)
        return Features(self.body(x, src_key_padding_mask=pad), mask)


class UpStage(nn.Module):
    """``conv -> PixelShuffle(2)`` (x2 resolution), then FiLM from the text vector and a refining conv."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 3, padding=1), nn.PixelShuffle(2))
        self.norm = nn.GroupNorm(min(8, c_out), c_out, affine=False)
        self.film = nn.Linear(cond_dim, 2 * c_out)
        self.refine = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond)[..., None, None].chunk(2, dim=1)
        x = F.gelu(self.norm(self.up(x)) * (1 + gamma) + beta)
        return F.gelu(self.refine(x))


class PixelShuffleDecoder(nn.Module):
    """Vector -> image: a ``4 x 4`` seed upsampled x2 by ``conv -> PixelShuffle(2)`` per stage.

    Every stage is also modulated (FiLM: per-channel scale and shift) by the text
    vector. Without it the caption reaches the pixels only through the 4 x 4 seed, and
    on scenes where position is not in the caption a reconstruction loss first learns
    the unconditional mean image (grey) and takes many steps to pick up colour.
    """

    def __init__(self, in_dim: int, image_size: int = 32, channels: int = 3, width: int = 16) -> None:
        super().__init__()
        stages = math.log2(image_size / 4) if image_size >= 4 else -1
        if stages < 0 or stages != int(stages):
            raise ConfigError(f"image_size must be 4 * 2**k (4, 8, 16, 32, 64, ...), got {image_size}")
        self.seed_channels = width * 2 ** int(stages)
        self.seed = nn.Linear(in_dim, self.seed_channels * 16)
        stages_list: list[nn.Module] = []
        c = self.seed_channels
        for _ in range(int(stages)):
            c_out = max(c // 2, 16)
            stages_list.append(UpStage(c, c_out, in_dim))
            c = c_out
        self.body = nn.ModuleList(stages_list)
        self.to_rgb = nn.Conv2d(c, channels, 3, padding=1)
        self.image_size, self.channels = image_size, channels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Unbounded pixel values (the loss is computed on these; see :meth:`TextToImageNet.generate`)."""
        x = F.gelu(self.seed(z).view(z.shape[0], self.seed_channels, 4, 4))
        for stage in self.body:
            x = stage(x, z)
        return self.to_rgb(x)


class TextToImageNet(nn.Module):
    """Text features -> pooled vector -> image in [0, 1]."""

    def __init__(self, text_encoder: nn.Module, image_size: int = 32, channels: int = 3, width: int = 64,
                 loss: str = "mse") -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"reconstruction loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.text = text_encoder
        dim = text_encoder.output_dim
        self.bottleneck = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())
        self.decoder = PixelShuffleDecoder(dim, image_size, channels, width)
        self.loss_name = loss

    def forward(self, tokens: ModalityBatch) -> torch.Tensor:
        """Unbounded predicted pixels ``[B, C, H, W]`` (training output)."""
        return self.decoder(self.bottleneck(self.text(tokens).pooled()))

    def generate(self, tokens: ModalityBatch) -> torch.Tensor:
        """Images ``[B, C, H, W]`` in [0, 1]."""
        return self(tokens).clamp(0.0, 1.0)

    def loss(self, tokens: ModalityBatch, images: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel L1/MSE against ``images`` in [0, 1], averaged over samples that have both."""
        pred = self(tokens)
        if images.shape != pred.shape:
            raise DataError(f"target images have shape {tuple(images.shape)}, the decoder produces {tuple(pred.shape)}; "
                            "set model.params.image_size / channels to match the dataset")
        per = (F.l1_loss if self.loss_name == "l1" else F.mse_loss)(pred, images, reduction="none").flatten(1).mean(1)
        keep = tokens.present if present is None else present & tokens.present
        return (per * keep).sum() / keep.sum().clamp_min(1)


class TextToImage(PolymodalModel):
    """Model plugin ``text-to-image``: generates the image field from the text field.

    ``model.params`` are :class:`polymodal_plugins.models.params.TextToImageParams`
    (read validated as ``ctx.params``): ``text_field`` / ``image_field`` (default: the only text /
    image field), ``image_size`` (from the image field, else 32), ``channels``
    (3), ``width`` (16), ``text_dim`` (128), ``text_layers`` (2), ``loss``
    (``"mse"``, the default, or ``"l1"``: L1 pulls every pixel towards the
    per-pixel median, which on scenes with a mostly empty background is the
    background, and it escapes that far more slowly than MSE). ``[model.encoders.<text field>]`` replaces the
    built-in text encoder with any registered one.
    """

    def __init__(self, config: ModelConfig, ctx: ModelContext) -> None:
        super().__init__(config, ctx)
        p: TextToImageParams = ctx.params
        text = pick_field(config, ctx, "text_field", "text", p.text_field)
        image = pick_field(config, ctx, "image_field", "image", p.image_field)
        self.text_field, self.image_field = text.name, image.name
        self._range = pixel_range(image)
        if text.name in config.encoders:
            encoder = ctx.build_encoder(text.name, config.encoders[text.name])
        else:
            vocab = Vocabulary.from_field(text, ctx.source)
            encoder = TokenTextEncoder(vocab.size, dim=p.text_dim, layers=p.text_layers,
                                       max_len=p.max_len or int(text.params.get("max_length", 64)))
        self.encoders[text.name] = encoder
        self.net = TextToImageNet(
            encoder,
            image_size=p.image_size or image_size(image, ctx.source),
            channels=p.channels or int(image.params.get("channels", 3)),
            width=p.width,
            loss=p.loss,
        )

    def _unit(self, images: torch.Tensor) -> torch.Tensor:
        """Dataset pixels -> [0, 1] (undoing the modality's normalisation when it has one)."""
        if self._range is None:
            return images
        mean, std = (t.to(images.device, images.dtype) for t in self._range)
        return images * std + mean

    def _tokens(self, batch: Batch) -> ModalityBatch:
        if self.text_field not in batch.inputs:
            raise DataError(f"batch has no text field {self.text_field!r} (fields: {', '.join(sorted(batch.inputs))})")
        return batch.inputs[self.text_field]

    def loss(self, batch: Batch) -> LossOutput:
        if self.image_field not in batch.inputs:
            raise DataError(f"batch has no image field {self.image_field!r} to reconstruct")
        img = batch.inputs[self.image_field]
        loss = self.net.loss(self._tokens(batch), self._unit(img.data.float()), img.present)
        return loss, {"loss": float(loss.detach())}

    def generate(self, batch: Batch) -> torch.Tensor:
        return self.net.generate(self._tokens(batch))
