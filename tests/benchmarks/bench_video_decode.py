"""Video decoding: frames/s of the video modality on real H.264 / VP9 files vs decoding every frame.

    python tests/benchmarks/bench_video_decode.py [--clips 6] [--seconds 10] [--frames 8] [--size 320x240]

Writes ``--clips`` clips per codec with PyAV (``--seconds`` at 25 fps, a
keyframe every 2 s, ordinary lossy settings as cameras and web video use),
then times two ways of getting ``--frames`` frames spread over each clip:
ours (``VideoModality.load``: sampled by time, seeking to each) and the
alternative (PyAV decoding every frame, as a loader without seeking does,
then picking the same frames). Printed: frames returned per second and
clips per second for both, the speed-up, and the largest pixel difference
between the frames both pick (they must be identical). The last lines are
one JSON object per row (see ``run_all.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write(path: Path, seconds: float, width: int, height: int, codec: str, seed: int) -> int:
    """A moving gradient with noise (so the encoder has real work); returns the frame count."""
    import av

    rng = np.random.default_rng(seed)
    n = int(seconds * 25)
    ys, xs = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": "50", **({"crf": "23"} if codec == "libx264" else {"crf": "32", "b:v": "0",
                                                                                 "deadline": "realtime",
                                                                                 "cpu-used": "8"})}
        for i in range(n):
            base = ((xs + 4 * i) % 256)[..., None] * np.array([1.0, 0.6, 0.3]) + ((ys + 2 * i) % 64)[..., None]
            frame = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return n


def decode_all(path: Path, frames: int) -> np.ndarray:
    """Every frame decoded in order, then ``frames`` picked at segment centres (by index)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        every = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    n = len(every)
    idx = np.minimum(((np.arange(frames) + 0.5) * n / frames).astype(int), n - 1)
    return np.stack([every[i] for i in idx])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", default="320x240")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    from polymodal.plugins import get_plugins

    video = get_plugins().build("modalities", "video", frames=args.frames)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for suffix, codec, label in ((".mp4", "libx264", "H.264"), (".webm", "libvpx-vp9", "VP9")):
            paths = [Path(tmp) / f"c{i}{suffix}" for i in range(args.clips)]
            total = sum(write(p, args.seconds, width, height, codec, i) for i, p in enumerate(paths))
            video.load(paths[0]), decode_all(paths[0], args.frames)  # warm-up (codec init, page cache)
            t0 = time.perf_counter()
            ours = [video.load(p) for p in paths]
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            alt = [decode_all(p, args.frames) for p in paths]
            t_alt = time.perf_counter() - t0
            diff = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(ours, alt, strict=True))
            got = args.clips * args.frames
            print(f"{label} {width}x{height}, {args.clips} clips x {args.seconds:g} s ({total} frames in all), "
                  f"{args.frames} frames per clip: ours {got / t_ours:.1f} frames/s ({args.clips / t_ours:.2f} clips/s); "
                  f"decode-everything {got / t_alt:.1f} frames/s ({total / t_alt:.0f} decoded frames/s, "
                  f"{args.clips / t_alt:.2f} clips/s); speed-up {t_alt / t_ours:.2f}x; max |diff| {diff}",
                  file=sys.stderr)
            rows.append({"benchmark": f"video decode {label} {width}x{height}, {args.seconds:g} s clips, "
                                      f"{args.frames} frames each",
                         "ours": round(got / t_ours, 1), "alternative": round(got / t_alt, 1), "unit": "frames/s",
                         "alternative_name": "PyAV decoding every frame, then picking",
                         "ratio": round(t_alt / t_ours, 2), "ratio_means": "speed-up (alternative time / ours)",
                         "max_abs_diff": diff, "goal": "identical frames, faster", "met": diff == 0 and t_ours < t_alt})
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
