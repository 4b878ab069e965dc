"""``faster-whisper``: a CTranslate2 Whisper behind the polymodal ``transcribe`` contract.

``[model] name = "faster-whisper"``, ``params = { model = "<CTranslate2 folder or hub id>" }``.
The audio field must hold raw waveforms (``[data.modalities.audio] features =
"waveform"``); clips at any rate are resampled to Whisper's 16 kHz. Long clips
are handled by faster-whisper itself (sequential 30-second windows). No
timestamps are predicted, no voice-activity filter drops audio, and decoding
is greedy at temperature 0 unless ``beam_size``/``temperature`` say otherwise
(faster-whisper's default re-decodes at rising temperatures when a window
looks doubtful, which makes evaluation slower and non-deterministic), so the
transcript is what WER should be scored on. Written against the public API only: ``polymodal``'s
model contract and batch objects.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from polymodal import ConfigError, PolymodalError
from polymodal.batch import Batch
from polymodal.model_api import PolymodalModel

SAMPLE_RATE = 16_000
_KNOWN = {"model", "audio_field", "text_field", "device", "compute_type", "cpu_threads", "beam_size", "language",
          "task", "local_files_only", "temperature"}


class FasterWhisper(PolymodalModel):
    """faster-whisper's ``WhisperModel`` transcribing the audio field."""

    def __init__(self, config: Any, ctx: Any):
        super().__init__(config, ctx)
        from faster_whisper import WhisperModel

        p = dict(config.params)
        unknown = sorted(set(p) - _KNOWN)
        if unknown:
            raise ConfigError(f"{ctx.source}: model.params.{unknown[0]}: unknown faster-whisper parameter; "
                              f"known: {', '.join(sorted(_KNOWN))}")
        if not isinstance(p.get("model"), str):
            raise ConfigError(f"{ctx.source}: model.params.model: faster-whisper needs a CTranslate2 model folder "
                              "or a hub id (a string)")
        self.model_id = p["model"]
        self.audio_field: str = p.get("audio_field", "audio")
        self.text_field: str = p.get("text_field", "text")
        self.beam_size = int(p.get("beam_size", 1))
        self.language: str | None = p.get("language")
        self.task: str = p.get("task", "transcribe")
        self.temperature = p.get("temperature", 0.0)
        if self.task not in ("transcribe", "translate") or self.beam_size < 1:
            raise ConfigError(f"{ctx.source}: model.params: task must be 'transcribe' or 'translate' and "
                              f"beam_size at least 1")
        local = bool(p.get("local_files_only", True))
        if os.path.isdir(self.model_id) and not os.path.isfile(os.path.join(self.model_id, "model.bin")):
            raise ConfigError(f"{ctx.source}: model.params.model: {self.model_id!r} has no model.bin; "
                              "it is not a CTranslate2 model folder")
        try:
            self.whisper = WhisperModel(self.model_id, device=p.get("device", "cpu"),
                                        compute_type=p.get("compute_type", "int8"),
                                        cpu_threads=int(p.get("cpu_threads", 0)), local_files_only=local)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"{ctx.source}: model.params.model: cannot load {self.model_id!r} with "
                              f"faster-whisper: {str(exc).splitlines()[0]}") from None

    @property
    def input_fields(self) -> tuple[str, ...]:
        return (self.audio_field,)

    def transcribe_waveform(self, wave: np.ndarray) -> str:
        """The transcript of one mono float32 waveform at 16 kHz."""
        if len(wave) == 0:
            return ""
        segments, _info = self.whisper.transcribe(
            np.ascontiguousarray(wave, dtype=np.float32), language=self.language, task=self.task,
            beam_size=self.beam_size, temperature=self.temperature, without_timestamps=True, vad_filter=False, condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()

    def transcribe(self, batch: Batch) -> list[str]:
        """One transcript per sample of the audio field."""
        if self.audio_field not in batch.inputs:
            raise PolymodalError(f"faster-whisper: batch has no field {self.audio_field!r}")
        mb = batch.inputs[self.audio_field]
        if mb.meta.get("features", "waveform") != "waveform" or mb.data.dim() != 3 or mb.data.shape[-1] != 1:
            raise ConfigError(f"faster-whisper: field {self.audio_field!r} must hold raw waveforms; set "
                              f"[data.modalities.{self.audio_field}] features = \"waveform\"")
        rate = int(mb.meta.get("sample_rate", SAMPLE_RATE))
        out = []
        for i in range(mb.data.shape[0]):
            wave = mb.data[i, mb.mask[i], 0].float().cpu()
            if rate != SAMPLE_RATE and len(wave):
                import torchaudio.functional as AF

                wave = AF.resample(wave, rate, SAMPLE_RATE)
            out.append(self.transcribe_waveform(wave.numpy()))
        return out

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise PolymodalError("faster-whisper runs CTranslate2 inference only; fine-tune with hf-whisper "
                             "and convert, or set [train] epochs = 0")
