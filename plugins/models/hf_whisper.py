"""A pretrained transformers Whisper model as a polymodal ``transcribe`` model.

``[model] name = "hf-whisper"`` with ``params = { model = "<hub id or folder>" }``.
It reads the audio field as raw waveforms, so the data config must keep them:
``[data.preprocess.audio] features = "waveform"`` (any ``sample_rate``: clips
are resampled to the checkpoint's rate, 16 kHz for every released Whisper).

Whisper sees 30-second windows. Longer clips (long-form audio) are cut into
consecutive windows of ``chunk_seconds`` that are transcribed as one batch
with everything else and joined with a space; no timestamps are predicted
(``<|notimestamps|>``), which is what WER is scored on. ``language`` and
``task`` (``transcribe`` or ``translate``) are passed to ``generate`` for
multilingual checkpoints; English-only ones (``*.en``) take neither.

Loading is offline by default (``local_files_only = true``) and uses classes
shipped inside transformers, so no remote code ever runs. ``loss`` is the
usual teacher-forced cross-entropy against the transcript field, so the model
can be fine-tuned like any other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from polymodal.batch import Batch
from polymodal.errors import ConfigError, DataError, PolymodalError
from polymodal.model_api import ModelConfig
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel

_TEXT_META_KEYS = ("text", "raw", "strings")


def batch_waveforms(batch: Batch, field: str, who: str) -> tuple[list[np.ndarray], int]:
    """Each sample's unpadded mono waveform of ``field`` and the batch's sample rate."""
    if field not in batch.inputs:
        raise PolymodalError(f"{who}: batch has no field {field!r} (fields: {', '.join(sorted(batch.inputs))})")
    mb = batch.inputs[field]
    if mb.meta.get("features", "waveform") != "waveform" or mb.data.dim() != 3 or mb.data.shape[-1] != 1:
        raise ConfigError(f"{who}: field {field!r} must hold raw waveforms; set [data.preprocess.{field}] "
                          f"features = \"waveform\" (got {mb.meta.get('features')!r}, shape {tuple(mb.data.shape)})")
    rate = mb.meta.get("sample_rate")
    if not isinstance(rate, int) or rate <= 0:
        raise ConfigError(f"{who}: field {field!r} does not say its sample_rate in the batch meta")
    data, mask = mb.data[..., 0].float().cpu(), mb.mask.cpu()
    return [data[i, mask[i]].numpy() for i in range(data.shape[0])], rate


def split_windows(wave: np.ndarray, window: int) -> list[np.ndarray]:
    """Consecutive windows of at most ``window`` samples (one window for a short or empty clip)."""
    if len(wave) <= window:
        return [wave]
    return [wave[i:i + window] for i in range(0, len(wave), window)]


class HFWhisper(PolymodalModel):
    """transformers Whisper behind the polymodal model interface (``transcribe``)."""

    def __init__(self, config: ModelConfig, ctx: ModelContext):
        super().__init__(config, ctx)
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        p = dict(config.params)  # names and types already checked against HFWhisperParams by build_model
        if not isinstance(p.get("model"), str):
            raise ConfigError(f"{ctx.source}: model.params.model: hf-whisper needs a hub id or local folder (a string)")
        self.model_id: str = p["model"]
        self.audio_field: str = p.get("audio_field", "audio")
        self.text_field: str = p.get("text_field", "text")
        self.language: str | None = p.get("language")
        self.task: str | None = p.get("task")
        if self.task not in (None, "transcribe", "translate"):
            raise ConfigError(f"{ctx.source}: model.params.task: expected 'transcribe' or 'translate', got {self.task!r}")
        self.chunk_seconds = float(p.get("chunk_seconds", 30.0))
        self.max_new_tokens = int(p.get("max_new_tokens", 128))
        self.num_beams = int(p.get("num_beams", 1))
        self.batch_size = int(p.get("batch_size", 16))
        if not 0 < self.chunk_seconds <= 30 or self.max_new_tokens < 1 or self.num_beams < 1 or self.batch_size < 1:
            raise ConfigError(f"{ctx.source}: model.params: chunk_seconds must be in (0, 30], max_new_tokens, "
                              "num_beams and batch_size at least 1")
        kwargs: dict[str, Any] = {"local_files_only": bool(p.get("local_files_only", True))}
        if p.get("revision"):
            kwargs["revision"] = p["revision"]
        try:
            self.whisper = WhisperForConditionalGeneration.from_pretrained(self.model_id, **kwargs)
            self.processor = WhisperProcessor.from_pretrained(self.model_id, **kwargs)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{ctx.source}: model.params.model: cannot load Whisper from {self.model_id!r}: "
                              f"{str(exc).splitlines()[0]}") from None
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)

    @property
    def input_fields(self) -> tuple[str, ...]:
        return (self.audio_field,)

    # -- raw inputs ---------------------------------------------------------------------------
    def _features(self, waves: list[np.ndarray]) -> torch.Tensor:
        feats = self.processor.feature_extractor(waves, sampling_rate=self.sample_rate, return_tensors="pt")
        return feats.input_features.to(device=next(self.whisper.parameters()).device,
                                       dtype=next(self.whisper.parameters()).dtype)

    def transcribe_waveforms(self, waves: list[np.ndarray], sample_rate: int) -> list[str]:
        """Transcripts of mono float waveforms at ``sample_rate``; long clips are windowed and joined."""
        if sample_rate != self.sample_rate:
            import torchaudio.functional as AF

            waves = [AF.resample(torch.as_tensor(w, dtype=torch.float32), sample_rate, self.sample_rate).numpy()
                     for w in waves]
        window = int(self.chunk_seconds * self.sample_rate)
        pieces: list[np.ndarray] = []
        owner: list[int] = []
        for i, w in enumerate(waves):
            if len(w) == 0:  # a missing clip (masked out) is transcribed as nothing
                continue
            for piece in split_windows(np.asarray(w, dtype=np.float32), window):
                pieces.append(piece)
                owner.append(i)
        gen_kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams,
                                      "return_timestamps": False}
        if self.language:
            gen_kwargs["language"] = self.language
        if self.task:
            gen_kwargs["task"] = self.task
        texts: list[str] = []
        with torch.no_grad():
            for lo in range(0, len(pieces), self.batch_size):
                try:
                    ids = self.whisper.generate(self._features(pieces[lo:lo + self.batch_size]), **gen_kwargs)
                except ValueError as exc:  # e.g. a language on an English-only checkpoint
                    raise ConfigError(f"{self.source}: hf-whisper {self.model_id!r}: {str(exc).splitlines()[0]}") from None
                ids = ids.sequences if hasattr(ids, "sequences") else ids
                texts.extend(t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True))
        out: list[list[str]] = [[] for _ in waves]
        for i, t in zip(owner, texts, strict=True):
            if t:
                out[i].append(t)
        return [" ".join(parts) for parts in out]

    # -- the model interface ------------------------------------------------------------------
    def transcribe(self, batch: Batch) -> list[str]:
        """One transcript per sample of the audio field."""
        waves, rate = batch_waveforms(batch, self.audio_field, f"hf-whisper {self.model_id!r}")
        return self.transcribe_waveforms(waves, rate)

    def loss(self, batch: Batch) -> LossOutput:
        """Teacher-forced cross-entropy of the transcripts in ``text_field`` (for fine-tuning)."""
        waves, rate = batch_waveforms(batch, self.audio_field, f"hf-whisper {self.model_id!r}")
        if rate != self.sample_rate:
            raise ConfigError(f"{self.source}: hf-whisper fine-tuning needs audio at {self.sample_rate} Hz; "
                              f"set [data.preprocess.{self.audio_field}] sample_rate = {self.sample_rate}")
        texts = self._strings(batch)
        tok = self.processor.tokenizer(texts, padding=True, return_tensors="pt")
        labels = tok.input_ids.masked_fill(tok.attention_mask == 0, -100).to(next(self.whisper.parameters()).device)
        out = self.whisper(input_features=self._features(waves), labels=labels)
        return out.loss, {"loss": float(out.loss.detach())}

    def _strings(self, batch: Batch) -> list[str]:
        mb = batch.inputs.get(self.text_field)
        for key in _TEXT_META_KEYS:
            value = mb.meta.get(key) if mb is not None else None
            if isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value):
                return list(value)
        raise DataError(f"hf-whisper needs the transcripts of field {self.text_field!r} as raw strings in the batch")
