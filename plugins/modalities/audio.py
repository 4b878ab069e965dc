"""The audio modality: WAV/FLAC/OGG via soundfile (or a video file's audio track via PyAV) -> features ``[T, F]``.

Clips are mixed to mono, resampled with ``torchaudio.functional.resample`` to
``sample_rate``, cut to ``max_seconds``, and turned into ``log-mel`` or
``mfcc`` frames with ``torchaudio.transforms`` (or kept as a raw
``waveform`` ``[L, 1]``). ``preprocess`` yields the waveform; ``collate``
computes features batched and pads frames to ``[B, T, F]`` with a mask
``[B, T]``. Headers are read before samples, so a file claiming gigabytes is
refused without reading it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from polymodal.batch import ModalityBatch
from polymodal.data import AudioClip
from polymodal.errors import DataError
from polymodal.data import resolve_inside
from polymodal.traits import ModalityTraits
from polymodal_plugins.modalities.video_files import is_container, read_audio_track

FEATURES = ("log-mel", "mfcc", "waveform")
#: Highest sample rate accepted from a file header (studio audio tops out at 768 kHz).
MAX_SAMPLE_RATE = 768_000
#: Largest polyphase resampling kernel (elements) we build; see :func:`_check_resample_cost`.
MAX_RESAMPLE_KERNEL = 50_000_000


def _check_resample_cost(orig: int, new: int) -> None:
    """Refuse rate pairs whose exact resampling kernel would be huge.

    ``torchaudio.functional.resample`` builds a kernel of about
    ``new' * (orig' + 2 * width)`` values with the rates divided by their gcd,
    so two coprime rates (a corrupt header saying 2,147,483,647 Hz) would ask
    for tens of gigabytes before any sample is touched.
    """
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    width = math.ceil(6 * o / (min(o, n) * 0.99))
    if n * (o + 2 * width) > MAX_RESAMPLE_KERNEL:
        raise DataError(f"audio: resampling {orig} Hz to {new} Hz needs a {n} x {o + 2 * width} kernel "
                        f"(rates with a tiny common divisor); resample the file to a standard rate first")


def read_audio(path: str | os.PathLike[str], max_frames: int | None = None) -> AudioClip:
    """Read an audio file as float32 ``[channels, length]``; refuse oversized ones."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: audio file not found") from None
    except Exception as exc:  # noqa: BLE001 - libsndfile errors
        raise DataError(f"{path}: cannot read audio: {type(exc).__name__}: {exc}") from None
    if not 0 < info.samplerate <= MAX_SAMPLE_RATE or info.channels <= 0:
        raise DataError(f"{path}: audio header has sample rate {info.samplerate} and {info.channels} channels")
    if max_frames is not None and info.frames > max_frames * 4:
        # Longer clips are cut anyway; refusing absurd headers avoids huge reads.
        raise DataError(f"{path}: audio has {info.frames} frames, more than 4x the configured maximum {max_frames}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True,
                           frames=-1 if max_frames is None else max_frames)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: corrupt audio: {type(exc).__name__}: {exc}") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: audio file has no samples")
    return AudioClip(np.ascontiguousarray(data.T), int(sr))


class AudioModality:
    """Audio clips as feature frames; ``sample_rate`` is the rate features are computed at."""

    name = "audio"
    traits = ModalityTraits(continuous=True, perturb_input=True, time_dims=(0,), raw_format="waveform",
                            preview="audio")

    def __init__(
        self,
        sample_rate: int = 8000,
        features: str = "log-mel",
        n_mels: int = 32,
        n_mfcc: int = 20,
        n_fft: int = 256,
        hop_length: int = 128,
        max_seconds: float = 10.0,
    ) -> None:
        if features not in FEATURES:
            raise DataError(f"audio features must be one of {FEATURES}, got {features!r}")
        if sample_rate <= 0 or max_seconds <= 0:
            raise DataError("audio sample_rate and max_seconds must be positive")
        self.sample_rate = int(sample_rate)
        self.features = features
        self.n_mels, self.n_mfcc, self.n_fft, self.hop_length = n_mels, n_mfcc, n_fft, hop_length
        self.max_seconds = float(max_seconds)
        self._transform: Any = None

    @property
    def feature_dim(self) -> int:
        """F, the size of one feature frame (what an audio encoder takes as input channels)."""
        return {"log-mel": self.n_mels, "mfcc": self.n_mfcc, "waveform": 1}[self.features]

    def _get_transform(self) -> Any:
        if self._transform is None and self.features != "waveform":
            import torchaudio

            mel = {"n_fft": self.n_fft, "hop_length": self.hop_length, "n_mels": self.n_mels}
            if self.features == "mfcc":
                self._transform = torchaudio.transforms.MFCC(self.sample_rate, n_mfcc=self.n_mfcc, melkwargs=mel)
            else:
                self._transform = torchaudio.transforms.MelSpectrogram(self.sample_rate, **mel)
        return self._transform

    def configure(self, preprocess_config: Mapping[str, Any]) -> AudioModality:
        """Adopt an encoder's audio settings; changes and returns ``self``."""
        cfg = dict(preprocess_config.get("audio", preprocess_config))
        keys = ("sample_rate", "features", "n_mels", "n_mfcc", "n_fft", "hop_length", "max_seconds")
        if not any(k in cfg for k in keys):
            return self
        current = {k: getattr(self, k) for k in keys}
        current.update({k: cfg[k] for k in keys if k in cfg})
        out = AudioModality(**current)
        # In place: a caller that ignores the return value must not keep the old preprocessing (issue 18).
        self.__dict__.update(out.__dict__)
        return self

    def load(self, value: Any, root: str | os.PathLike[str] | None = None) -> AudioClip:
        """A path (inside ``root``), an :class:`AudioClip`, ``(samples, rate)``, or an array at ``sample_rate``."""
        if isinstance(value, str | os.PathLike):
            path = resolve_inside(root, value)
            if is_container(path):  # a video file: its audio track (audio-visual samples)
                samples, rate = read_audio_track(path, self.max_seconds)
                return AudioClip(samples, rate)
            return read_audio(path, int(self.max_seconds * 192_000))
        if isinstance(value, AudioClip):
            return value
        if isinstance(value, tuple) and len(value) == 2:
            return AudioClip(np.asarray(value[0], dtype=np.float32), int(value[1]))
        if isinstance(value, np.ndarray | torch.Tensor):
            return AudioClip(np.asarray(value, dtype=np.float32), self.sample_rate)
        raise DataError(f"audio: expected a path, AudioClip, (samples, rate) or array, got {type(value).__name__}")

    def preprocess(self, raw: AudioClip) -> torch.Tensor:
        """Mono waveform ``[L]`` at ``sample_rate``, cut to ``max_seconds`` (features come in ``collate``)."""
        samples = torch.as_tensor(np.asarray(raw.samples, dtype=np.float32))
        if samples.dim() == 1:
            samples = samples.unsqueeze(0)
        if samples.dim() != 2 or samples.shape[-1] == 0:
            raise DataError(f"audio samples have shape {tuple(samples.shape)}; expected [length] or [channels, length] with length > 0")
        if not 0 < raw.sample_rate <= MAX_SAMPLE_RATE:
            raise DataError(f"audio sample rate {raw.sample_rate} is outside 1..{MAX_SAMPLE_RATE} Hz")
        wave = samples.mean(0)
        if not torch.isfinite(wave.sum()):  # one reduction instead of an elementwise check
            raise DataError("audio contains NaN or infinite samples")
        # Cut before resampling so the cost is bounded by max_seconds.
        wave = wave[: int(self.max_seconds * raw.sample_rate) + 1]
        if raw.sample_rate != self.sample_rate:
            import torchaudio.functional as AF

            _check_resample_cost(raw.sample_rate, self.sample_rate)
            wave = AF.resample(wave, raw.sample_rate, self.sample_rate)
        return wave[: int(self.max_seconds * self.sample_rate)]

    def preprocess_batch(self, raws: Sequence[AudioClip | None]) -> ModalityBatch | None:
        """Mono clips of one length at ``sample_rate`` prepared in one operation, then ``collate``; None otherwise.

        The waveforms are those ``preprocess`` gives (a one-channel clip is its
        own mean; cut to ``max_seconds``); a clip that needs mixing,
        resampling or the NaN check's message goes the per-sample way.
        """
        present = [r for r in raws if r is not None]
        if not present:
            return None
        first = present[0]
        if not all(isinstance(r, AudioClip) and r.sample_rate == self.sample_rate and isinstance(r.samples, np.ndarray)
                   and r.samples.dtype == np.float32 and r.samples.ndim == 2 and r.samples.shape[0] == 1
                   and r.samples.shape == first.samples.shape for r in present) or not first.samples.shape[-1]:
            return None
        waves = torch.from_numpy(np.stack([r.samples[0] for r in present]))
        if not torch.isfinite(waves.sum()):
            return None
        waves = waves[:, : min(int(self.max_seconds * self.sample_rate) + 1, int(self.max_seconds * self.sample_rate))]
        rows = iter(waves)
        return self.collate([None if r is None else next(rows) for r in raws])

    def featurize(self, waves: torch.Tensor) -> torch.Tensor:
        """Features ``[N, T, F]`` for equal-length mono waveforms ``[N, L]``."""
        if self.features == "waveform":
            return waves.unsqueeze(-1)
        if waves.shape[-1] < self.n_fft:
            waves = torch.nn.functional.pad(waves, (0, self.n_fft - waves.shape[-1]))
        feats = self._get_transform()(waves)  # [N, F, T]
        if self.features == "log-mel":
            feats = torch.log(feats + 1e-6)
        return feats.transpose(1, 2).contiguous()

    def collate(self, values: Sequence[torch.Tensor | None]) -> ModalityBatch:
        """Featurise and pad to ``[B, T, F]``.

        Features are computed here, batched over clips of equal length (the
        common case), which is several times faster than per clip; clips of
        different lengths are never padded *before* featurising, so a clip's
        features never depend on its batch-mates.
        """
        feats: list[torch.Tensor | None] = [None] * len(values)
        by_length: dict[int, list[int]] = {}
        for i, v in enumerate(values):
            if v is not None:
                by_length.setdefault(int(v.shape[-1]), []).append(i)
        for idx in by_length.values():
            out = self.featurize(torch.stack([values[i] for i in idx]))
            for j, i in enumerate(idx):
                feats[i] = out[j]
        length = max([f.shape[0] for f in feats if f is not None] or [1])
        data = torch.zeros(len(values), length, self.feature_dim)
        mask = torch.zeros(len(values), length, dtype=torch.bool)
        for i, f in enumerate(feats):
            if f is not None:
                data[i, : f.shape[0]] = f
                mask[i, : f.shape[0]] = True
        return ModalityBatch(data, mask, {"modality": self.name, "sample_rate": self.sample_rate,
                                          "features": self.features})

    def describe(self) -> dict[str, Any]:
        return {"modality": self.name, "sample_rate": self.sample_rate, "features": self.features,
                "feature_dim": self.feature_dim, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "max_seconds": self.max_seconds}
