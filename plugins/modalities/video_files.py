"""Video container files (``.mp4``, ``.webm``, ``.mkv``, ``.avi``, ``.mov``) decoded with PyAV.

PyAV's wheel bundles FFmpeg, so no system FFmpeg is needed. Frames are
sampled *by time* and the decoder seeks to each wanted time (to the keyframe
before it) rather than decoding the whole clip, so a 10-minute file costs
about as much as a short one. Two ways to choose the times:

- a count (``fps=None``): ``frames`` times at the centres of equal segments of
  the clip (``uniform``), or one random time inside each segment (``random``,
  the TSN habit for training);
- a rate (``fps``): ``frames`` times ``1/fps`` apart in one window, centred
  (``uniform``) or at a random start (``random``); a clip shorter than the
  window gives fewer frames (``collate`` pads and masks them).

A frame "at time t" is the one being shown at t: the last frame whose
presentation time is <= t. Every failure (missing PyAV, a corrupt file, a
codec the bundled FFmpeg cannot decode, no video or audio stream) is a
one-line :class:`DataError` naming the file.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import DataError

CONTAINER_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")
#: Seek again when the next wanted time is this far (seconds) past the last decoded frame;
#: closer times are reached faster by decoding forward than by seeking to a keyframe.
SEEK_GAP = 1.0


def is_container(path: Path) -> bool:
    """Whether ``path`` names a file decoded here (by suffix)."""
    return path.suffix.lower() in CONTAINER_SUFFIXES


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise DataError("decoding .mp4/.webm/.mkv/.avi needs PyAV: pip install 'polymodal[video]'") from None
    return av


def _open(path: Path) -> Any:
    av = _av()
    if not path.is_file():
        raise DataError(f"{path}: video not found")
    try:
        return av.open(str(path))
    except Exception as exc:  # noqa: BLE001 - FFmpeg raises many error types for bad files
        raise DataError(f"{path}: corrupt or unreadable video file: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words without the file name PyAV appends (the message already names it)."""
    return f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"


def _decoder_check(path: Path, stream: Any) -> None:
    """Refuse streams the bundled FFmpeg has no decoder for, naming the codec."""
    av = _av()
    name = getattr(stream.codec_context, "name", None) if stream.codec_context is not None else None
    try:
        if not name:
            raise ValueError("no codec")
        av.codec.Codec(name, "r")
    except Exception:  # noqa: BLE001 - UnknownCodecError or a missing decoder
        codec = repr(name) if name else "(not known to FFmpeg)"
        raise DataError(f"{path}: unsupported {stream.type} codec {codec}: "
                        f"the FFmpeg bundled with PyAV {av.__version__} cannot decode it; re-encode the file "
                        f"(e.g. to H.264 or VP9)") from None


def _duration(container: Any, stream: Any) -> tuple[float, float] | None:
    """``(start, duration)`` in seconds from the headers, or None when they do not say."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if stream.duration and stream.time_base:
        return start, float(stream.duration * stream.time_base)
    if container.duration:
        return start, container.duration / 1_000_000 - max(start, 0.0)
    return None


def clip_rng(seed: int | None, path: Path) -> np.random.Generator | None:
    """A generator fixed by ``seed`` and the clip's path (the same frames every epoch), or None."""
    if seed is None:
        return None
    return np.random.default_rng([int(seed), zlib.crc32(str(path).encode())])


def sample_times(start: float, duration: float, frames: int, fps: float | None, sampling: str,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """The presentation times (seconds) to show, sorted; see the module docstring."""
    draw = rng.random if rng is not None else np.random.random_sample
    if fps is None:
        offset = draw(frames) if sampling == "random" else np.full(frames, 0.5)
        return start + (np.arange(frames) + offset) * duration / frames
    window = frames / fps
    slack = max(duration - window, 0.0)
    first = start + (float(draw()) * slack if sampling == "random" else slack / 2)
    times = first + (np.arange(frames) + 0.5) / fps
    kept = times[times < start + duration]
    return kept if len(kept) else times[:1]


class _NoTimestamps(Exception):
    """A decoded frame without a presentation time: sampling by time is impossible, sample by index."""


def _frames_at(container: Any, stream: Any, times: np.ndarray) -> Iterator[Any]:
    """The frame shown at each of the sorted ``times``, seeking across long gaps."""
    it: Iterator[Any] | None = None
    held = prev = None
    last = -np.inf
    for t in times:
        if it is None or t - last > SEEK_GAP:
            container.seek(max(int(t / stream.time_base), 0), backward=True, any_frame=False, stream=stream)
            it, held, prev = container.decode(stream), None, None
        while True:
            if held is None:
                held = next(it, None)
                if held is None:
                    break
                if held.time is None:
                    raise _NoTimestamps
                last = held.time
            if held.time > t + 1e-6:
                break
            prev, held = held, None
        chosen = prev if prev is not None else held
        if chosen is None:
            raise DataError(f"no frame decodes at {t:.3f} s")
        yield chosen


def read_video(path: Path, frames: int, fps: float | None = None, sampling: str = "uniform",
               seed: int | None = None, max_pixels: int = 50_000_000,
               max_source_frames: int = 10_000) -> np.ndarray:
    """``[K, H, W, 3]`` uint8 RGB frames sampled from a container file (K = ``frames`` or fewer with ``fps``)."""
    container = _open(path)
    with container:
        if not container.streams.video:
            raise DataError(f"{path}: file has no video stream")
        stream = container.streams.video[0]
        _decoder_check(path, stream)
        stream.thread_type = "AUTO"
        w, h = stream.codec_context.width, stream.codec_context.height
        if w * h * frames > max_pixels * 4:
            raise DataError(f"{path}: {frames} frames of {w}x{h} are over the configured pixel limit")
        span = _duration(container, stream)
        try:
            if span is not None and span[1] > 0:
                times = sample_times(*span, frames, fps, sampling, clip_rng(seed, path))
                try:
                    return np.stack([f.to_ndarray(format="rgb24") for f in _frames_at(container, stream, times)])
                except _NoTimestamps:
                    container.seek(0)
            # No duration or no timestamps (some AVI/raw streams): decode all, bounded; the modality samples by index.
            out = []
            for frame in container.decode(stream):
                out.append(frame.to_ndarray(format="rgb24"))
                if len(out) > max_source_frames or len(out) * w * h > max_pixels * 4:
                    raise DataError(f"{path}: video has more than {len(out) - 1} frames of {w}x{h}, over the "
                                    f"configured limits (max_source_frames {max_source_frames}, max_pixels)")
            if not out:
                raise DataError(f"{path}: video stream has no frames")
            return np.stack(out)
        except DataError as exc:
            msg = str(exc)
            raise DataError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
        except Exception as exc:  # noqa: BLE001 - FFmpeg decode errors on truncated/corrupt packets
            raise DataError(f"{path}: corrupt video data: {_reason(exc)}") from None


def read_audio_track(path: Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """The first audio stream of a container as float32 ``[channels, length]`` and its sample rate.

    Decoding stops after ``max_seconds`` (the audio modality cuts clips there anyway).
    """
    av = _av()
    container = _open(path)
    with container:
        if not container.streams.audio:
            raise DataError(f"{path}: file has no audio track")
        stream = container.streams.audio[0]
        _decoder_check(path, stream)
        rate = int(stream.codec_context.sample_rate or stream.rate or 0)
        if rate <= 0:
            raise DataError(f"{path}: audio track has no sample rate")
        max_samples = None if max_seconds is None else max(int(max_seconds * rate), 1)
        # Planar float whatever the codec's sample format, so every frame is [channels, n].
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        chunks, total = [], 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    total += chunks[-1].shape[-1]
                if max_samples is not None and total >= max_samples:
                    break
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{path}: corrupt audio track: {_reason(exc)}") from None
        if not total:
            raise DataError(f"{path}: audio track has no samples")
        samples = np.concatenate(chunks, axis=-1).astype(np.float32)
        return (samples if max_samples is None else samples[:, :max_samples]), rate
