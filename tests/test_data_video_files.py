"""Real video files (.mp4 H.264, .webm VP9, .mkv, .avi MPEG-4) written with PyAV and read back
through the video modality: frames sampled by time match the written ones, the audio track is read
as an ``audio`` field, and bad files fail with one line naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from needs import need

try:
    import av
except ImportError:  # pragma: no cover - the test extra installs it; need() fails in CI, skips elsewhere
    av = None

from polymodal import DataError
from polymodal.plugins import get_plugins
from video_testkit import CODECS, make_frames, nearest, write_clip

FRAMES = make_frames(30)  # 3 s at 10 fps


@pytest.fixture(autouse=True)
def _needs_pyav():
    need(av is not None, "PyAV is not installed: pip install -c constraints.txt -e '.[test]'")


def _video(**params):
    return get_plugins().build("modalities", "video", **params)


@pytest.mark.parametrize("suffix", list(CODECS))
def test_decoded_frames_are_the_written_ones(tmp_path, suffix):
    clip = write_clip(tmp_path / f"c{suffix}", FRAMES)
    got = _video(frames=6, size=8).load(clip.name, tmp_path)
    assert got.shape == (6, 32, 48, 3) and got.dtype == np.uint8
    idx, err = nearest(got, FRAMES)
    assert idx == [2, 7, 12, 17, 22, 27]  # centres of 6 equal segments of 30 frames, as for .npy clips
    assert err.max() < (12 if suffix == ".avi" else 1.5)  # lossless H.264/VP9 up to YUV rounding; MPEG-4 is lossy


def test_time_sampling_by_fps_and_seeded_random(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", FRAMES)
    # 5 frames at 2 fps: a 2.5 s window centred in 3 s (0.25..2.75 s), times at the centres of its
    # 0.5 s steps (0.5, 1.0, ... 2.5 s) -> frames 5, 10, ... 25 of a 10 fps clip.
    assert nearest(_video(frames=5, fps=2.0).load(clip), FRAMES)[0] == [5, 10, 15, 20, 25]
    # A window longer than the clip gives fewer frames (collate pads and masks them).
    assert nearest(_video(frames=8, fps=2.0).load(clip), FRAMES)[0] == [2, 7, 12, 17, 22, 27]
    one = [nearest(_video(frames=4, sampling="random", seed=s).load(clip), FRAMES)[0] for s in (3, 3, 4)]
    assert one[0] == one[1] and one[0] != one[2]  # the seed fixes the draw
    for idx in one:  # one random time inside each quarter of the clip: the frame shown then (frame 7 spans 0.7-0.8 s)
        assert all(int(k * 7.5) <= i < (k + 1) * 7.5 for k, i in enumerate(idx)), idx
    with pytest.raises(DataError, match="fps must be > 0"):
        _video(fps=0)


def test_seeking_reaches_far_frames_without_decoding_the_whole_clip(tmp_path):
    from polymodal_plugins.modalities import video_files

    frames = make_frames(200, 16, 16)
    clip = write_clip(tmp_path / "long.mkv", frames, rate=20, gop=40)  # keyframe every 2 s
    idx, err = nearest(_video(frames=4).load(clip), frames)
    assert idx == [25, 75, 125, 175] and err.max() < 1.5
    decoded = []

    class Counting:  # the real container, counting the frames its decoder hands out
        def __init__(self, inner):
            self.inner = inner

        def seek(self, *args, **kwargs):
            return self.inner.seek(*args, **kwargs)

        def decode(self, stream):
            for frame in self.inner.decode(stream):
                decoded.append(frame.time)
                yield frame

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        got = list(video_files._frames_at(Counting(container), stream, np.array([1.3, 3.8, 6.3, 8.8])))
    assert [round(f.time, 2) for f in got] == [1.3, 3.8, 6.3, 8.8]  # frames 26, 76, 126, 176 at 20 fps
    assert len(decoded) <= 4 * 40  # at most from the keyframe before each wanted time: not all 200


def test_audio_track_is_the_audio_field_of_the_same_sample(tmp_path):
    for suffix in (".mp4", ".webm"):
        write_clip(tmp_path / f"a{suffix}", FRAMES, audio_hz=440.0)
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"video": f"a{s}", "audio": f"a{s}", "label": s[1:]}) + "\n"
                                              for s in (".mp4", ".webm")))
    ds = get_plugins().build("datasets", "manifest", root=str(tmp_path), path="m.jsonl")
    assert ds.fields == {"video": "video", "audio": "audio"}
    for i in range(2):
        assert nearest(ds[i]["video"], FRAMES)[0] == [1, 5, 9, 13, 16, 20, 24, 28]  # 8 frames (the default)
        clip = ds[i]["audio"]
        mono = clip.samples.mean(0)
        assert 2.9 < mono.shape[0] / clip.sample_rate < 3.2  # the 3 s track
        spectrum = np.abs(np.fft.rfft(mono))
        assert abs(np.argmax(spectrum) * clip.sample_rate / len(mono) - 440.0) < 2.0
    folder = tmp_path / "folder" / "beep"
    folder.mkdir(parents=True)
    write_clip(folder / "x.mp4", FRAMES, audio_hz=440.0)
    cf = get_plugins().build("datasets", "clip-folder", root=str(tmp_path / "folder"), modality="video",
                             audio_track=True)
    assert cf.fields == {"video": "video", "audio": "audio"} and cf[0]["audio"].sample_rate == 16000
    silent = write_clip(tmp_path / "silent.mp4", FRAMES)
    with pytest.raises(DataError, match=r"silent.mp4: file has no audio track"):
        get_plugins().build("modalities", "audio").load(silent)


def test_bad_files_fail_with_one_line_naming_the_file(tmp_path):
    good = write_clip(tmp_path / "good.mp4", FRAMES).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(good[: len(good) // 3])
    (tmp_path / "junk.webm").write_bytes(b"definitely not a matroska file" * 50)
    avi = write_clip(tmp_path / "ok.avi", FRAMES[:5]).read_bytes()
    assert avi.count(b"FMP4") == 2  # the stream header's handler and the bitmap header's compression
    (tmp_path / "odd.avi").write_bytes(avi.replace(b"FMP4", b"ZZZZ"))  # a codec FFmpeg does not know
    video = _video(frames=4)
    cases = {"cut.mp4": "corrupt", "junk.webm": "corrupt or unreadable", "odd.avi": "unsupported video codec",
             "gone.mkv": "video not found"}
    for name, words in cases.items():
        with pytest.raises(DataError, match=words) as info:
            video.load(name, tmp_path)
        assert name in str(info.value) and "\n" not in str(info.value)


def test_clip_folder_of_video_files_collates_to_frames(tmp_path):
    for cls, seed in (("jump", 1), ("wave", 2)):
        (tmp_path / cls).mkdir()
        for j, suffix in enumerate((".mp4", ".webm")):
            write_clip(tmp_path / cls / f"{j}{suffix}", make_frames(12, 16, 16, seed=seed + 10 * j))
    ds = get_plugins().build("datasets", "clip-folder", root=str(tmp_path), modality="video")
    assert ds.class_names == {"label": ["jump", "wave"]} and len(ds) == 4
    from polymodal.data import build_modalities, make_loader

    mods = build_modalities(ds.fields, {"video": {"frames": 3, "size": 8}})
    batch = next(iter(make_loader(ds, mods, batch_size=4)))
    assert batch.inputs["video"].data.shape == (4, 3, 3, 8, 8)
    assert batch.targets["label"].tolist() == [0, 0, 1, 1]


def test_clip_folder_skips_corrupt_video_files_with_the_reason(tmp_path):
    (tmp_path / "a").mkdir()
    write_clip(tmp_path / "a" / "ok.mp4", FRAMES[:10])
    (tmp_path / "a" / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    ds = get_plugins().build("datasets", "clip-folder", root=str(tmp_path), modality="video", on_error="skip")
    assert len(ds) == 1 and ds.skipped == 1
    sample, reason = ds.skipped_samples[0]
    assert sample.endswith("bad.mp4") and "bad.mp4" in reason and "corrupt" in reason


def test_headers_without_duration_fall_back_to_decoding_all_and_sampling_by_index(tmp_path, monkeypatch):
    from polymodal_plugins.modalities import video_files

    clip = write_clip(tmp_path / "c.avi", FRAMES)
    monkeypatch.setattr(video_files, "_duration", lambda container, stream: None)
    video = _video(frames=6, size=8)
    raw = video.load(clip)
    assert len(raw) == 30 and nearest(raw, FRAMES)[0] == list(range(30))
    assert video.preprocess(raw).shape == (6, 3, 8, 8)
    with pytest.raises(DataError, match=r"c.avi: video has more than 9 frames"):
        _video(frames=6, max_source_frames=9).load(clip)
