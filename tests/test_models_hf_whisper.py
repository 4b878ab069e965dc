"""``hf-whisper``: a tiny random Whisper saved locally and reloaded offline (HF_HUB_OFFLINE=1).

The oracle is transformers itself, called directly one clip at a time: the
plugin's batched, padded, resampled and windowed path must give the same text.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import models_testkit as kit
from polymodal import ConfigError
from polymodal.batch import Batch
from polymodal.experiment import experiment_from_dict
from polymodal.model_api import FieldInfo, ModelContext, build_model
from polymodal_plugins.modalities.audio import AudioModality
from polymodal.data import AudioClip

from whisper_testkit import save_tiny_whisper

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return save_tiny_whisper(tmp_path_factory.mktemp("tinywhisper"))


def make(whisper_dir, **params):
    cfg = experiment_from_dict({"data": {"dataset": "x"},
                                "model": {"name": "hf-whisper", "params": {"model": str(whisper_dir), **params}}},
                               "asr.toml")
    ctx = ModelContext(kit.plugins(), {"audio": FieldInfo("audio", "audio")}, {}, "asr.toml")
    return build_model(cfg.model, ctx)


def audio_batch(waves, rate=16000, features="waveform"):
    mod = AudioModality(sample_rate=rate, features=features, max_seconds=120)
    return Batch({"audio": mod.collate([mod.preprocess(AudioClip(w, rate)) for w in waves])}, {}, [])


def direct(whisper_dir, wave, **gen):
    """transformers alone, one 16 kHz clip of at most 30 s."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    m = WhisperForConditionalGeneration.from_pretrained(whisper_dir, local_files_only=True).eval()
    p = WhisperProcessor.from_pretrained(whisper_dir, local_files_only=True)
    feats = p.feature_extractor([wave], sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = m.generate(feats, max_new_tokens=12, return_timestamps=False, **gen)
    return p.batch_decode(ids, skip_special_tokens=True)[0].strip()


def waves(seed=0, seconds=(1.0, 2.5, 0.5)):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]


def test_batched_transcripts_equal_transformers_one_clip_at_a_time(whisper_dir):
    model = make(whisper_dir, max_new_tokens=12, language="en", task="transcribe")
    assert model.capabilities == frozenset({"transcribe"}) and model.input_fields == ("audio",)
    clips = waves()
    got = model.transcribe(audio_batch(clips))
    want = [direct(whisper_dir, w, language="en", task="transcribe") for w in clips]
    assert got == want and len(got) == 3
    assert any(got)  # the random model does emit text, so the comparison means something


def test_long_form_audio_is_windowed_and_joined(whisper_dir):
    model = make(whisper_dir, max_new_tokens=12, chunk_seconds=30)
    (clip,) = waves(1, seconds=(65.0,))
    got = model.transcribe(audio_batch([clip]))
    pieces = [direct(whisper_dir, clip[i:i + 480000]) for i in range(0, len(clip), 480000)]
    assert len(pieces) == 3
    assert got == [" ".join(p for p in pieces if p)]


def test_other_sample_rates_are_resampled(whisper_dir):
    import torchaudio.functional as AF

    model = make(whisper_dir, max_new_tokens=12)
    (clip,) = waves(2, seconds=(1.5,))
    at_8k = AF.resample(torch.from_numpy(clip), 16000, 8000).numpy()
    got = model.transcribe(audio_batch([at_8k], rate=8000))
    assert got == [direct(whisper_dir, AF.resample(torch.from_numpy(at_8k), 8000, 16000).numpy())]


def test_language_and_task_reach_generate(whisper_dir, monkeypatch):
    model = make(whisper_dir, max_new_tokens=4, language="de", task="translate")
    seen = {}
    real = model.whisper.generate

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(model.whisper, "generate", spy)
    model.transcribe(audio_batch(waves(seconds=(0.5,))))
    assert seen["language"] == "de" and seen["task"] == "translate" and seen["return_timestamps"] is False


def test_fine_tuning_loss_is_finite_and_has_gradients(whisper_dir):
    from polymodal.batch import ModalityBatch

    model = make(whisper_dir)
    batch = audio_batch(waves(seconds=(0.5, 0.7)))
    batch.inputs["text"] = ModalityBatch(torch.zeros(2, 1), torch.ones(2, 1, dtype=torch.bool),
                                         {"text": ["the cat", "hello"]})
    loss, logs = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and logs["loss"] > 0
    assert model.whisper.model.decoder.embed_tokens.weight.grad is not None


def test_errors_name_the_problem(whisper_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"model.params.beam: unknown key \(did you mean 'num_beams'\?\)"):
        make(whisper_dir, beam=2)
    with pytest.raises(ConfigError, match="task: expected 'transcribe' or 'translate'"):
        make(whisper_dir, task="summarise")
    with pytest.raises(ConfigError, match="cannot load Whisper from"):
        make(tmp_path / "nothing-here")
    model = make(whisper_dir)
    with pytest.raises(ConfigError, match='features = "waveform"'):
        model.transcribe(audio_batch(waves(seconds=(0.5,)), features="log-mel"))
