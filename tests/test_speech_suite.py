"""Speech recognition end to end with a tiny random Whisper: the ``speech`` dataset reader
(LibriSpeech layout and manifests) and a suite running task and noise axes on ``hf-whisper``.

The tiny model's transcripts are gibberish, so the WER rows are checked against
jiwer recomputed on the transcripts the axis recorded, not against a target value.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from torchmetrics import Metric

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from polymodal import DataError
from polymodal_plugins.datasets.speech import SpeechDataset

from whisper_testkit import save_tiny_whisper

TRANSCRIPTS = {"1-10-0000": "HELLO WORLD", "1-10-0001": "THE CAT SAT", "2-20-0000": "A SHORT ONE",
               "2-20-0001": "NUMBERS ONE TWO THREE"}


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_librispeech(root, split="test-clean"):
    for k, (utt, text) in enumerate(TRANSCRIPTS.items()):
        spk, chap, _ = utt.split("-")
        folder = root / split / spk / chap
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{utt}.flac", _tone(0.6 + 0.2 * k, 200 + 50 * k), 16000)
        with open(folder / f"{spk}-{chap}.trans.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{utt} {text}\n")
    return root


def test_librispeech_layout_and_manifest_read_the_same_samples(tmp_path):
    make_librispeech(tmp_path)
    ds = SpeechDataset(tmp_path, split="test-clean")
    assert [ds[i]["id"] for i in range(len(ds))] == list(TRANSCRIPTS)
    assert [ds[i]["text"] for i in range(len(ds))] == list(TRANSCRIPTS.values())
    assert ds[0]["audio"].sample_rate == 16000 and ds.fields == {"audio": "audio", "text": "text"}
    lines = [json.dumps({"audio_filepath": os.path.relpath(tmp_path / ds.records[i].values["audio"], tmp_path),
                         "text": t, "duration": 1.0}) for i, t in enumerate(TRANSCRIPTS.values())]
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    man = SpeechDataset(tmp_path, layout="manifest")
    assert [man[i]["text"] for i in range(len(man))] == list(TRANSCRIPTS.values())
    assert np.array_equal(man[2]["audio"].samples, ds[2]["audio"].samples)


def test_speech_reader_errors_name_file_and_line(tmp_path):
    make_librispeech(tmp_path)
    trans = tmp_path / "test-clean" / "2" / "20" / "2-20.trans.txt"
    trans.write_text(trans.read_text() + "2-20-0009 GHOST LINE\n")
    with pytest.raises(DataError, match=r"2-20.trans.txt, line 3: no audio file 2-20-0009"):
        SpeechDataset(tmp_path, split="test-clean")
    (tmp_path / "m.jsonl").write_text('{"audio": "x.wav"}\n')
    with pytest.raises(DataError, match=r"m.jsonl, line 1: expected an audio path"):
        SpeechDataset(tmp_path, layout="manifest", manifest="m.jsonl")


SUITE = """
name = "asr-tiny"
seeds = [0]
eval_split = "test-clean"

[defaults.data]
dataset = "speech"
root = "{root}"
train_split = "test-clean"
val_split = "test-clean"
test_split = "test-clean"
fields = ["audio"]
batch_size = 4
modalities = {{ audio = {{ features = "waveform", sample_rate = 16000, max_seconds = 40 }} }}

[defaults.train]
epochs = 0

[runs.whisper]
axes = ["task", "noise", "importance"]
model.name = "hf-whisper"
model.params = {{ model = "{model}", max_new_tokens = 6 }}

[axes.task]
examples = 10

[axes.noise]
axis = "robustness.noise"
severities = [1, 5]
corruptions = {{ audio = ["gaussian_noise"] }}

[axes.importance]
axis = "interpretability.importance"
time_segments = 4
"""


@pytest.fixture(scope="module")
def asr_results(tmp_path_factory):
    from polymodal.cli import main
    from polymodal.plugins import get_plugins

    root = tmp_path_factory.mktemp("asr-suite")
    make_librispeech(root / "data")
    model = save_tiny_whisper(root / "whisper")
    suite = root / "asr.toml"
    suite.write_text(SUITE.format(root=root / "data", model=model))
    out = root / "out"
    try:
        code = main(["run", str(suite), "--out", str(out), "--no-report", "-q", "--fail-fast"])
    finally:
        get_plugins(refresh=True)
    assert code == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    return rows, out


def test_task_axis_scores_wer_and_cer_equal_to_jiwer(asr_results):
    import jiwer

    rows, out = asr_results
    task = {r["metric"]: r for r in rows if r["axis"] == "task"}
    assert set(task) == {"wer", "cer"}
    assert task["wer"]["conditions"]["task"] == "speech-recognition"
    assert task["wer"]["extra"]["higher_is_better"] is False
    artifacts = [json.loads(line) for line in (out / "artifacts.jsonl").read_text().splitlines() if line.strip()]
    data = [a["data"] for a in artifacts if a["kind"] == "transcript_example"]
    assert len(data) == len(TRANSCRIPTS)
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveWhiteSpace(replace_by_space=True),
                          jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    refs, hyps = [d["reference"] for d in data], [d["transcript"] for d in data]
    assert refs == list(TRANSCRIPTS.values())
    want = jiwer.wer(refs, hyps, reference_transform=norm, hypothesis_transform=norm)
    assert abs(task["wer"]["value"] - want) < 1e-12


def test_noise_axis_reports_word_accuracy_under_audio_corruption(asr_results):
    rows, _ = asr_results
    noise = [r for r in rows if r["axis"] == "robustness.noise" and r["metric"] == "word_accuracy"]
    severities = sorted(r["conditions"]["severity"] for r in noise)
    assert severities == [0, 1, 5]
    task_wer = next(r["value"] for r in rows if r["axis"] == "task" and r["metric"] == "wer")
    clean = next(r["value"] for r in noise if r["conditions"]["severity"] == 0)
    assert abs(clean - (1 - task_wer)) < 1e-12  # the same transcripts, the same jiwer count
    assert any(r["metric"] == "corruption_error" for r in rows if r["axis"] == "robustness.noise")


def test_importance_axis_occludes_time_segments(asr_results):
    rows, _ = asr_results
    imp = [r for r in rows if r["axis"] == "interpretability.importance"]
    per_segment = sorted((r["conditions"]["segment"], r["value"]) for r in imp if r["metric"] == "segment_wer_increase")
    assert [s for s, _ in per_segment] == [0, 1, 2, 3]
    spread = next(r for r in imp if r["metric"] == "segment_importance_spread")
    values = [v for _, v in per_segment]
    assert abs(spread["value"] - (max(values) - min(values))) < 1e-12
    task_wer = next(r["value"] for r in rows if r["axis"] == "task" and r["metric"] == "wer")
    assert abs(spread["extra"]["clean_wer"] - task_wer) < 1e-12


class ConstantWER(Metric):
    """A third party's ``wer`` replacing the built-in: constant 0.4, so where it is used shows."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.add_state("n", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, predictions, references) -> None:
        self.n += len(references)

    def compute(self) -> torch.Tensor:
        return torch.tensor(0.4, dtype=torch.float64)


class ConstantCER(ConstantWER):
    """A chosen ``transcribe`` headline: constant 0.3."""

    def compute(self) -> torch.Tensor:
        return torch.tensor(0.3, dtype=torch.float64)


def test_noise_and_importance_measure_the_wer_another_plugin_replaces(tmp_path):
    from polymodal import component
    from polymodal.testing import run_suite_with

    make_librispeech(tmp_path / "data")
    model = save_tiny_whisper(tmp_path / "whisper")
    suite = tmp_path / "asr.toml"
    text = SUITE.format(root=tmp_path / "data", model=model)
    # a second importance axis chooses its headline: ``headline = { transcribe = "fixed-cer" }``
    chosen = '\n[axes.importance-cer]\naxis = "interpretability.importance"\ntime_segments = 2\n' \
             'headline = { transcribe = "fixed-cer" }\n'
    suite.write_text(text.replace('axes = ["task", "noise", "importance"]', 'axes = ["noise", "importance", "importance-cer"]')
                     .replace("severities = [1, 5]", "severities = [1]").replace("time_segments = 4", "time_segments = 2")
                     + chosen)
    replacement = component("metrics", "wer", ConstantWER, replaces="metric.asr", capabilities=["transcribe"])
    added = component("metrics", "fixed-cer", ConstantCER, capabilities=["transcribe"])
    rows = run_suite_with(suite, replacement, added, out=tmp_path / "out", limit=2)
    noise = [r["value"] for r in rows if r["axis"] == "robustness.noise" and r["metric"] == "word_accuracy"]
    assert noise == pytest.approx([0.6, 0.6])  # clean and severity 1: 1 - the replacement's 0.4
    imp = [r for r in rows if r["axis"] == "interpretability.importance" and r["metric"] == "segment_wer_increase"]
    by_label = {label: [r for r in imp if r["conditions"]["axis_label"] == label]
                for label in ("importance", "importance-cer")}
    assert len(by_label["importance"]) == 2 and all(
        r["value"] == 0 and r["extra"]["clean_wer"] == pytest.approx(0.4) for r in by_label["importance"])
    assert len(by_label["importance-cer"]) == 2 and all(
        r["extra"]["clean_wer"] == pytest.approx(0.3) and r["extra"]["headline"] == "fixed-cer"
        for r in by_label["importance-cer"])
