"""Small real video files written with PyAV, for the video tests and the decode benchmark.

Each frame is a flat random colour with a bright square whose position and
shade follow the frame index, so a decoded frame is identified by its
nearest written frame even through a lossy codec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: suffix -> (encoder, pixel format, options): lossless or near-lossless settings where the encoder has them.
CODECS = {
    ".mp4": ("libx264", "yuv444p", {"qp": "0"}),
    ".mkv": ("libx264", "yuv444p", {"qp": "0"}),
    ".webm": ("libvpx-vp9", "yuv444p", {"lossless": "1"}),
    ".avi": ("mpeg4", "yuv420p", {"qscale": "1"}),
}
AUDIO = {".mp4": "aac", ".mkv": "libopus", ".webm": "libopus", ".avi": "pcm_s16le"}


def make_frames(n: int, height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    """``[n, H, W, 3]`` uint8 frames, each easy to tell from every other."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        out[i] = rng.integers(0, 256, 3)
        top, left = (3 * i) % (height // 2), (5 * i) % (width // 2)
        out[i, top:top + height // 2, left:left + width // 2] = (37 * i) % 256
    return out


def write_clip(path: Path, frames: np.ndarray, rate: int = 10, *, audio_hz: float | None = None,
               gop: int | None = None) -> Path:
    """Encode ``frames`` at ``rate`` fps into ``path`` (codec from the suffix); with ``audio_hz``
    also a mono sine of that frequency, as long as the video, at 16 kHz (48 kHz for Opus)."""
    import av

    codec, pix_fmt, options = CODECS[path.suffix]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = dict(options, **({"g": str(gop)} if gop else {}))
        sound = None
        if audio_hz is not None:
            acodec = AUDIO[path.suffix]
            sound = container.add_stream(acodec, rate=48000 if acodec == "libopus" else 16000, layout="mono")
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            sr = sound.codec_context.sample_rate
            t = np.arange(int(len(frames) / rate * sr)) / sr
            wave = (0.3 * np.sin(2 * np.pi * audio_hz * t)).astype(np.float32)[None]
            step = sound.codec_context.frame_size or 1024
            fmt = sound.codec_context.format.name
            for start in range(0, wave.shape[1], step):
                chunk = wave[:, start:start + step]
                if fmt == "s16":
                    chunk = (chunk * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout="mono")
                frame.sample_rate, frame.pts = sr, start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def nearest(decoded: np.ndarray, written: np.ndarray) -> tuple[list[int], np.ndarray]:
    """For each decoded frame, the index of the closest written frame and the mean absolute error to it."""
    err = np.abs(decoded[:, None].astype(np.int32) - written[None].astype(np.int32)).mean(axis=(2, 3, 4))
    idx = err.argmin(1)
    return idx.tolist(), err[np.arange(len(decoded)), idx]
