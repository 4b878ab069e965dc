"""Modalities on real files written here: PNG, JPEG, GIF, WebP, WAV, FLAC, .npy, frame folders."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from polymodal.data import AudioClip, Collator
from polymodal.errors import DataError
from polymodal_plugins.modalities.audio import AudioModality
from polymodal_plugins.modalities.image import ImageModality
from polymodal_plugins.modalities.text import TextModality
from polymodal_plugins.modalities.video import VideoModality
from polymodal_plugins.modalities.vocabulary import Vocabulary, tokenize

torch.set_num_threads(1)


def _rgb(h: int = 20, w: int = 30, colour: tuple[int, int, int] = (200, 30, 60)) -> np.ndarray:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:] = colour
    return arr


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("GIF", ".gif"), ("WEBP", ".webp")])
def test_image_formats_load_and_normalise(tmp_path, fmt, suffix):
    Image.fromarray(_rgb()).save(tmp_path / f"a{suffix}", format=fmt)
    mod = ImageModality(size=16, mean=(0, 0, 0), std=(1, 1, 1))
    t = mod.preprocess(mod.load(f"a{suffix}", tmp_path))
    assert t.shape == (3, 16, 16)
    tol = 0.08 if fmt in ("JPEG", "WEBP", "GIF") else 1e-3  # lossy / palette formats
    assert torch.allclose(t.mean((1, 2)), torch.tensor([200, 30, 60]) / 255.0, atol=tol)


def test_image_follows_timm_data_config():
    mod = ImageModality().configure({"input_size": (3, 24, 24), "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.2, 0.2),
                                     "interpolation": "bicubic", "crop_pct": 0.875})
    assert mod.size == (24, 24) and mod.interpolation == "bicubic" and mod.crop_pct == 0.875
    t = mod.preprocess(_rgb(40, 40, (255, 255, 255)))
    assert t.shape == (3, 24, 24)
    assert torch.allclose(t[:, 12, 12], (1 - torch.tensor([0.5, 0.4, 0.3])) / 0.2, atol=1e-4)


def test_image_centre_crop_keeps_the_centre():
    arr = np.zeros((32, 64, 3), np.uint8)
    arr[:, 16:48] = 255  # white centre band, black sides
    t = ImageModality(size=32, mean=(0, 0, 0), std=(1, 1, 1)).preprocess(arr)
    assert t.min() > 0.99  # the short side fits, the long side is cropped to the white centre


def test_image_collate_marks_missing():
    mod = ImageModality(size=8)
    b = mod.collate([mod.preprocess(_rgb()), None])
    assert b.data.shape == (2, 3, 8, 8) and b.mask.tolist() == [True, False]
    assert b.data[1].abs().sum() == 0


def test_image_errors_name_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    mod = ImageModality()
    with pytest.raises(DataError, match="bad.png"):
        mod.load("bad.png", tmp_path)
    with pytest.raises(DataError, match="not found"):
        mod.load("missing.png", tmp_path)
    with pytest.raises(DataError, match="outside the dataset root"):
        mod.load("../escape.png", tmp_path)


def test_image_decompression_bomb_refused_before_decoding(tmp_path):
    Image.new("RGB", (400, 400)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match="more than the limit"):
        ImageModality(max_pixels=10_000).load("big.png", tmp_path)


def test_vocabulary_fit_encode_decode_roundtrip(tmp_path):
    vocab = Vocabulary.fit(["a red circle", "a blue square", "一个红色圆形"])
    assert tokenize("一个红色 circle!") == ["一", "个", "红", "色", "circle", "!"]
    ids = vocab.encode("a red square")
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert vocab.decode(ids) == "a red square"
    assert vocab.decode(vocab.encode("一个红色圆形")) == "一个红色圆形"
    assert vocab.encode("a purple thing")[2] == vocab.unk_id
    loaded = Vocabulary.load(vocab.save(tmp_path / "v.json"))
    assert loaded.tokens == vocab.tokens
    (tmp_path / "bad.json").write_text('{"tokens": 3}')
    with pytest.raises(DataError, match="not a polymodal vocabulary"):
        Vocabulary.load(tmp_path / "bad.json")


def test_text_modality_pads_and_masks():
    mod = TextModality(max_length=6)
    with pytest.raises(DataError, match="no vocabulary"):
        mod.preprocess("a b")
    mod.fit(["a red circle", "a blue square moving left"])
    b = mod.collate([mod.preprocess(mod.load("a red circle")), mod.preprocess("a blue square moving left now"), None])
    assert b.data.shape == (3, 6)
    assert b.mask.sum(1).tolist() == [5, 6, 0]
    assert b.data[0, 5] == mod.pad_id and b.data[1, -1] == Vocabulary.eos_id  # truncated keeps <eos>
    with pytest.raises(DataError, match="empty caption"):
        mod.load("   ")


def test_text_bounds_hostile_caption_length():
    mod = TextModality(max_length=8)
    mod.fit(["word"])
    raw = mod.load("word " * 2_000_000)
    assert len(raw) <= 8 * 64
    assert mod.preprocess(raw).shape == (8,)


def _write_tone(path, sr, freq=440.0, seconds=0.5, channels=1, fmt=None):
    t = np.arange(int(sr * seconds)) / sr
    wave = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    data = np.stack([wave] * channels, axis=1)
    sf.write(path, data, sr, format=fmt)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_audio_files_resampled_to_log_mel(tmp_path, suffix):
    _write_tone(tmp_path / f"a{suffix}", 16000, channels=2)
    mod = AudioModality(sample_rate=8000, features="log-mel", n_mels=24, n_fft=256, hop_length=128)
    clip = mod.load(f"a{suffix}", tmp_path)
    assert clip.sample_rate == 16000 and clip.samples.shape[0] == 2
    batch = mod.collate([mod.preprocess(clip)])
    feats = batch.data[0]
    assert feats.shape[1] == 24 and batch.mask.all()
    assert abs(feats.shape[0] - (4000 // 128 + 1)) <= 1  # 0.5 s at 8 kHz
    # A 440 Hz tone puts its energy in a low mel band, not the top one.
    assert feats.mean(0).argmax() < 12


def test_audio_mfcc_and_waveform_and_collate():
    tone = AudioClip(np.sin(np.linspace(0, 200, 4000, dtype=np.float32))[None], 8000)
    mfcc = AudioModality(features="mfcc", n_mfcc=13)
    assert mfcc.collate([mfcc.preprocess(tone)]).data.shape[2] == 13
    wav = AudioModality(features="waveform", sample_rate=4000)
    w = wav.preprocess(tone)
    assert w.shape == (2000,)  # resampled 8 kHz -> 4 kHz
    b = wav.collate([w, w[:100], None])
    assert b.data.shape == (3, 2000, 1) and b.mask.sum(1).tolist() == [2000, 100, 0]


def test_audio_batched_features_equal_per_clip_features():
    mod = AudioModality(features="log-mel")
    rng = np.random.default_rng(0)
    clips = [mod.preprocess(AudioClip(rng.normal(size=(1, n)).astype(np.float32), 8000)) for n in (3000, 3000, 1700)]
    batch = mod.collate([clips[0], None, clips[1], clips[2]])
    for row, clip in ((0, clips[0]), (2, clips[1]), (3, clips[2])):
        alone = mod.collate([clip])
        n = int(alone.mask.sum())
        assert int(batch.mask[row].sum()) == n
        assert torch.allclose(batch.data[row, :n], alone.data[0, :n], atol=1e-5)
    assert not batch.mask[1].any()


def test_audio_refuses_corrupt_and_oversized(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(DataError, match="bad.wav"):
        AudioModality().load("bad.wav", tmp_path)
    _write_tone(tmp_path / "long.wav", 8000, seconds=3.0)
    with pytest.raises(DataError, match="frames"):
        AudioModality(max_seconds=0.001).load("long.wav", tmp_path)
    with pytest.raises(DataError, match="NaN"):
        AudioModality().preprocess(AudioClip(np.full((1, 500), np.nan, np.float32), 8000))


def _frames(n=6, px=16):
    out = np.zeros((n, px, px, 3), np.uint8)
    for i in range(n):
        out[i] = i * 40
    return out


def test_video_from_gif_npy_and_frame_folder(tmp_path):
    frames = _frames()
    Image.fromarray(frames[0]).save(tmp_path / "clip.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]], duration=50)
    np.save(tmp_path / "clip.npy", frames)
    (tmp_path / "clip_frames").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / "clip_frames" / f"{i:03d}.png")
    mod = VideoModality(frames=3, size=16, mean=(0, 0, 0), std=(1, 1, 1))
    expected = torch.tensor([40, 120, 200]) / 255.0  # uniform sampling: segment centres 1, 3, 5
    for source in ("clip.gif", "clip.npy", "clip_frames"):
        t = mod.collate([mod.preprocess(mod.load(source, tmp_path))]).data[0]
        assert t.shape == (3, 3, 16, 16), source
        assert torch.allclose(t.mean((1, 2, 3)), expected, atol=0.02), source
    b = mod.collate([t, None])
    assert b.data.shape == (2, 3, 3, 16, 16) and b.mask.tolist() == [[True] * 3, [False] * 3]


def test_video_random_sampling_sorted_and_bad_npy(tmp_path):
    mod = VideoModality(frames=4, sampling="random", size=16, mean=(0, 0, 0), std=(1, 1, 1))
    t = mod.collate([mod.preprocess(_frames(6))]).data[0]
    means = t.mean((1, 2, 3))
    assert torch.all(means[1:] > means[:-1])  # frames stay in time order
    np.save(tmp_path / "bad.npy", np.zeros((3, 4), np.float32))
    with pytest.raises(DataError, match="bad.npy"):
        mod.load("bad.npy", tmp_path)


def test_collator_builds_batch_with_targets_and_missing():
    image, text = ImageModality(size=8), TextModality(max_length=5)
    text.fit(["a b c"])
    items = [
        {"id": "x", "image": _rgb(), "text": "a b", "label": 2, "captions": ["a", "b"]},
        {"id": "y", "text": "c", "label": 0, "captions": ["c"]},
    ]
    batch = Collator({"image": image, "text": text}, ["label", "captions"], dataset_name="toy")(items)
    assert batch.ids == ["x", "y"]
    assert batch.inputs["image"].mask.tolist() == [True, False]
    assert batch.targets["label"].dtype == torch.long and batch.targets["label"].tolist() == [2, 0]
    assert batch.targets["captions"] == [["a", "b"], ["c"]]
    with pytest.raises(DataError, match="dataset 'toy', sample 'z', field 'text'.*empty caption"):
        Collator({"text": text}, [], dataset_name="toy")([{"id": "z", "text": ""}])
    with pytest.raises(DataError, match="missing target 'label'"):
        Collator({"text": text}, ["label"])([{"id": "z", "text": "a"}])
