"""A realistic quick-start-like results folder, written exactly as the runner writes one.

The reporter tests (and the README screenshot) render this folder. It mirrors
the quick-start suite on ``shapes``: a fusion classifier trained with each
fusion strategy, a captioner, a dual encoder and a text-to-image model, every
axis, qualitative artifacts with real PNG files, and one failed run whose
``error`` row carries a traceback. Values are synthetic but shaped like real
ones (accuracy falls with severity and epsilon; fusion strategies differ).

Run ``python tests/reports_fixture.py OUT_DIR`` to write one by hand.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from polymodal.stats import PER_SAMPLE_KEY, encode_per_sample
from polymodal.results import JsonlStore, ResultRow

FUSIONS = ("concat", "weighted", "attention")
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 50, 47), "green": (64, 160, 43), "blue": (38, 139, 210), "yellow": (230, 190, 30)}
IMAGE_CORRUPTIONS = ("gaussian_noise", "blur", "jpeg", "occlusion", "contrast")
TEXT_CORRUPTIONS = ("typos", "word_dropout", "word_shuffle")
SEVERITIES = (0, 1, 2, 3, 4, 5)
EPSILONS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)


def shape_image(shape: str, colour: str, size: int = 96, seed: int = 0) -> Image.Image:
    """One ``shapes``-style picture: a coloured shape on a light, slightly noisy background."""
    rng = np.random.default_rng(seed)
    bg = (240 + rng.integers(-8, 8, (size, size, 3))).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(bg)
    draw = ImageDraw.Draw(img)
    m = size // 5
    box = (m, m, size - m, size - m)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(size // 2, m), (size - m, size - m), (m, size - m)], fill=fill)
    return img


def heatmap_overlay(img: Image.Image, centre: tuple[float, float], spread: float) -> Image.Image:
    """An attention heatmap blended over the image (what the attention axis saves)."""
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    heat = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * spread**2))
    heat = (heat - heat.min()) / (np.ptp(heat) + 1e-9)
    colour = np.stack([heat, 0.3 * heat, 1 - heat], axis=-1) * 255
    base = np.asarray(img, dtype=np.float64)
    return Image.fromarray((0.55 * base + 0.45 * colour).clip(0, 255).astype(np.uint8))


#: Metrics that are means of per-sample 0/1 outcomes: the fixture keeps their per-sample scores.
PER_SAMPLE_METRICS = {"accuracy", "robust_accuracy", "attack_success_rate", "accuracy_missing_modality",
                      "recall@1"}
#: Samples behind every per-sample metric of the fixture.
N_SAMPLES = 400


def per_sample_bits(value: float, n: int = N_SAMPLES) -> dict[str, Any]:
    """Per-sample 0/1 scores whose mean is ``value`` (rounded to 1/n): the first samples succeed.

    Nested successes make higher-scoring runs succeed on a superset of the
    samples, as a clearly better model would.
    """
    hits = int(round(value * n))
    return encode_per_sample([1.0] * hits + [0.0] * (n - hits))


def _row(store: JsonlStore, run: str, axis: str, metric: str, value: float, conditions: dict[str, Any],
         extra: dict[str, Any] | None = None) -> None:
    extra = dict(extra or {})
    if metric in PER_SAMPLE_METRICS and axis != "train":
        extra[PER_SAMPLE_KEY] = per_sample_bits(value)
        value = round(value * N_SAMPLES) / N_SAMPLES
    store.append(ResultRow(axis=axis, metric=metric, value=float(value), run=run, conditions=conditions,
                           extra=extra).to_json())


def write_results_folder(root: Path, *, fusions: tuple[str, ...] = FUSIONS, seed: int = 0,
                         include_failed: bool = True, include_other_models: bool = True,
                         quality_shift: float = 0.0) -> Path:
    """Write results.jsonl, artifacts.jsonl, artifacts/*.png and manifest.json under ``root``.

    ``quality_shift`` moves every score (for ``compare`` tests: a second folder
    that is uniformly better or worse).
    """
    root = Path(root)
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    store = JsonlStore(root / "results.jsonl")
    arts = JsonlStore(root / "artifacts.jsonl")
    runs: list[dict[str, Any]] = []

    # Fusion strategies differ in clean accuracy and, more, in robustness.
    quality = {"concat": 0.86, "weighted": 0.89, "attention": 0.93, "tensor": 0.9}
    fragility = {"concat": 0.13, "weighted": 0.10, "attention": 0.07, "tensor": 0.1}
    for fusion in fusions:
        run = f"fusion-classifier/{fusion}/seed{seed}"
        base = {"model": "fusion-classifier", "fusion": fusion, "dataset": "shapes", "seed": seed}
        runs.append({"id": run, "model": "fusion-classifier", "fusion": fusion, "dataset": "shapes",
                     "seed": seed, "status": "complete"})
        acc = min(0.99, quality[fusion] + quality_shift + rng.normal(0, 0.005))
        for epoch in range(1, 6):
            _row(store, run, "train", "loss", 1.6 * math.exp(-0.55 * epoch) + 0.1 * (1 - acc) + rng.normal(0, .01),
                 {**base, "epoch": epoch})
            _row(store, run, "train", "accuracy", acc * (1 - 0.5 * math.exp(-0.8 * epoch)), {**base, "epoch": epoch})
        _row(store, run, "task", "accuracy", acc, base)
        _row(store, run, "task", "f1_macro", acc - 0.012, base)
        _row(store, run, "zero-shot", "accuracy", acc - 0.21 + rng.normal(0, 0.01), {**base, "split": "held-out"})
        # the clean baseline, as the noise axis writes it: one point at severity 0, no modality
        _row(store, run, "robustness.noise", "accuracy", acc, {**base, "corruption": "none", "severity": 0})
        for modality, corruptions in (("image", IMAGE_CORRUPTIONS), ("text", TEXT_CORRUPTIONS)):
            for corruption in corruptions:
                hardness = 1.0 + 0.15 * corruptions.index(corruption) + (0.3 if modality == "image" else -0.2)
                curve = []
                for severity in SEVERITIES:
                    value = acc * (1 - fragility[fusion] * hardness * severity**1.2 / 3)
                    value = max(0.1, value + rng.normal(0, 0.004))
                    curve.append(value)
                    _row(store, run, "robustness.noise", "accuracy", value,
                         {**base, "modality": modality, "corruption": corruption, "severity": severity})
                auc = float(np.trapezoid(curve, SEVERITIES) / (curve[0] * SEVERITIES[-1]))
                _row(store, run, "robustness.noise", "auc_relative", auc,
                     {**base, "modality": modality, "corruption": corruption})
            _row(store, run, "robustness.noise", "accuracy_missing_modality",
                 acc * (0.62 if modality == "image" else 0.8) + 0.05 * (fusion == "attention"),
                 {**base, "modality": modality, "corruption": "missing"})
        for attack in ("fgsm", "pgd_linf"):
            strength = 1.0 if attack == "fgsm" else 1.4
            for eps in EPSILONS:
                robust = acc * math.exp(-strength * fragility[fusion] * 255 * eps / 2.2)
                _row(store, run, "robustness.adversarial", "robust_accuracy", robust,
                     {**base, "attack": attack, "modality": "image", "epsilon": eps})
                _row(store, run, "robustness.adversarial", "attack_success_rate", 1 - robust / acc,
                     {**base, "attack": attack, "modality": "image", "epsilon": eps})
        image_share = {"concat": 0.62, "weighted": 0.55, "attention": 0.48}.get(fusion, 0.5)
        total = acc - 0.33
        for method in ("shapley", "ablation"):
            for modality, share in (("image", image_share), ("text", 1 - image_share)):
                value = total * share * (1.0 if method == "shapley" else 0.93)
                _row(store, run, "interpretability.importance", method, value, {**base, "modality": modality})
        _row(store, run, "interpretability.importance", "deletion_auc", 0.41 - 0.05 * quality[fusion],
             {**base, "method": "integrated_gradients", "order": "most-important-first"})
        _row(store, run, "interpretability.importance", "deletion_auc", 0.71,
             {**base, "method": "integrated_gradients", "order": "random"})
        arts.append({"run": run, "axis": "interpretability.importance", "kind": "importance",
                     "data": {"method": "shapley", "values": {"image": total * image_share,
                                                             "text": total * (1 - image_share)}}})
        if fusion == "attention":
            for i, (shape, colour) in enumerate((("circle", "red"), ("triangle", "blue"))):
                img = shape_image(shape, colour, seed=10 + i)
                rel = f"artifacts/attention_{fusion}_{i}.png"
                heatmap_overlay(img, (0.5, 0.45 + 0.05 * i), 0.18).resize((192, 192)).save(root / rel)
                arts.append({"run": run, "axis": "interpretability.attention", "kind": "attention_map",
                             "path": rel, "data": {"caption": f"a {colour} {shape}", "label": shape}})
            arts.append({"run": run, "axis": "interpretability.attention", "kind": "attention_map",
                         "data": {"tokens": ["a", "small", "red", "circle", "on", "grey"],
                                  "weights": [0.02, 0.08, 0.41, 0.38, 0.03, 0.08]}})

    if include_failed:
        run = f"fusion-classifier/tensor/seed{seed}"
        runs.append({"id": run, "model": "fusion-classifier", "fusion": "tensor", "dataset": "shapes",
                     "seed": seed, "status": "failed"})
        store.append(ResultRow(axis="task", metric="error", value=None, run=run,
                               conditions={"model": "fusion-classifier", "fusion": "tensor", "dataset": "shapes",
                                           "seed": seed},
                               extra={"message": "RuntimeError: mat1 and mat2 shapes cannot be multiplied",
                                      "traceback": "Traceback (most recent call last):\n  File \"runner.py\", "
                                                   "line 210, in run_one\n    logits = model(batch)\nRuntimeError:"
                                                   " mat1 and mat2 shapes cannot be multiplied (8x4097 and 4096x3)"
                                      }).to_json())

    if include_other_models:
        run = f"captioner/attention/seed{seed}"
        base = {"model": "captioner", "fusion": "attention", "dataset": "shapes", "seed": seed}
        runs.append({"id": run, **{k: base[k] for k in ("model", "fusion", "dataset", "seed")}, "status": "complete"})
        for metric, value in (("bleu_4", 0.412), ("rouge_l", 0.637), ("cider", 1.184)):
            _row(store, run, "task", metric, value + quality_shift, base)
        for corruption in ("gaussian_noise", "blur"):
            for severity in SEVERITIES:
                _row(store, run, "robustness.noise", "cider", 1.184 * (1 - 0.09 * severity),
                     {**base, "modality": "image", "corruption": corruption, "severity": severity})
        for i, (shape, colour) in enumerate((("circle", "red"), ("square", "green"), ("triangle", "yellow"))):
            rel = f"artifacts/caption_{i}.png"
            shape_image(shape, colour, seed=20 + i).resize((160, 160)).save(root / rel)
            generated = f"a {colour} {shape} on a grey background" if i != 2 else f"a {colour} square"
            arts.append({"run": run, "axis": "task", "kind": "caption_example", "path": rel,
                         "data": {"image": rel, "generated": generated,
                                  "references": [f"a {colour} {shape}", f"a {shape} that is {colour}",
                                                 f"one {colour} {shape} in the middle"],
                                  "scores": {"bleu_4": 0.61 - 0.25 * i, "cider": 1.9 - 0.7 * i}}})
            heat = heatmap_overlay(shape_image(shape, colour, seed=20 + i), (0.5, 0.5), 0.22).resize((160, 160))
            heat.save(root / f"artifacts/caption_attention_{i}.png")
            if i == 0:
                arts.append({"run": run, "axis": "interpretability.attention", "kind": "attention_map",
                             "path": f"artifacts/caption_attention_{i}.png",
                             "data": {"caption": "attention while generating 'circle'"}})

        run = f"dual-encoder/seed{seed}"
        base = {"model": "dual-encoder", "dataset": "shapes", "seed": seed}
        runs.append({"id": run, "model": "dual-encoder", "fusion": None, "dataset": "shapes", "seed": seed,
                     "status": "complete"})
        for direction, shift in (("image->text", 0.0), ("text->image", -0.04)):
            for k, value in ((1, 0.47), (5, 0.83), (10, 0.94)):
                _row(store, run, "retrieval", f"recall@{k}", min(1.0, value + shift + quality_shift),
                     {**base, "direction": direction, "pair": "image-text"})
        _row(store, run, "zero-shot", "accuracy", 0.71 + quality_shift, {**base, "split": "held-out"})
        # embedding noise: two retrieval directions per corruption (two series in one panel)
        for direction, shift in (("image->text", 0.0), ("text->image", -0.06)):
            _row(store, run, "robustness.noise", "recall@1", 0.47 + shift,
                 {**base, "corruption": "none", "severity": 0, "direction": direction})
            for severity in SEVERITIES:
                _row(store, run, "robustness.noise", "recall@1", (0.47 + shift) * (1 - 0.12 * severity),
                     {**base, "modality": "image", "corruption": "gaussian_noise", "severity": severity,
                      "direction": direction})
        query_img = "artifacts/retrieval_query_0.png"
        shape_image("circle", "blue", seed=31).resize((128, 128)).save(root / query_img)
        arts.append({"run": run, "axis": "retrieval", "kind": "retrieval_example",
                     "data": {"direction": "image->text", "query": {"image": query_img},
                              "results": [{"text": "a blue circle", "score": 0.83, "hit": True},
                                          {"text": "a blue square", "score": 0.71, "hit": False},
                                          {"text": "a green circle", "score": 0.64, "hit": False}]}})
        items = []
        for j, (shape, colour) in enumerate((("square", "red"), ("square", "yellow"), ("circle", "red"))):
            rel = f"artifacts/retrieval_item_{j}.png"
            shape_image(shape, colour, seed=40 + j).resize((128, 128)).save(root / rel)
            items.append({"image": rel, "score": 0.79 - 0.08 * j, "hit": j == 0})
        arts.append({"run": run, "axis": "retrieval", "kind": "retrieval_example",
                     "data": {"direction": "text->image", "query": {"text": "a red square"}, "results": items}})

        run = f"text-to-image/seed{seed}"
        base = {"model": "text-to-image", "dataset": "shapes", "seed": seed}
        runs.append({"id": run, "model": "text-to-image", "fusion": None, "dataset": "shapes", "seed": seed,
                     "status": "complete"})
        for metric, value in (("fid", 48.3), ("kid", 0.031), ("inception_score", 2.41), ("clip_score", 0.27)):
            _row(store, run, "task", metric, value, base)
        for j, (shape, colour) in enumerate((("circle", "green"), ("square", "blue"), ("triangle", "red"))):
            rel = f"artifacts/generated_{j}.png"
            shape_image(shape, colour, seed=50 + j, size=64).resize((128, 128), Image.NEAREST).save(root / rel)
            arts.append({"run": run, "axis": "task", "kind": "generated_image", "path": rel,
                         "data": {"caption": f"a {colour} {shape}"}})

    manifest = {
        "schema": 1,
        "polymodal_version": "0.1.0",
        "suite": {"name": "quickstart", "dataset": {"name": "shapes", "size": 600},
                  "models": [{"name": "fusion-classifier", "fusion": list(fusions)},
                             {"name": "captioner"}, {"name": "dual-encoder"}, {"name": "text-to-image"}],
                  "train": {"epochs": 5, "batch_size": 32, "lr": 0.001},
                  "axes": {"task": {}, "zero-shot": {}, "retrieval": {"k": [1, 5, 10]},
                           "robustness.noise": {"severities": list(SEVERITIES)},
                           "robustness.adversarial": {"attacks": ["fgsm", "pgd_linf"], "epsilons": list(EPSILONS)},
                           "interpretability.attention": {}, "interpretability.importance": {}},
                  "seeds": [seed]},
        "runs": runs,
        "versions": {"python": "3.11.2", "torch": "2.14.1",
                     "plugins": {"fusion.concat": "0.1.0", "fusion.attention": "0.1.0", "axis.task": "0.1.0"}},
        "seeds": [seed],
        "device": "cpu",
        "started": "2025-01-07T10:00:00+00:00",
        "finished": "2025-01-07T10:03:41+00:00",
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root


if __name__ == "__main__":
    print(write_results_folder(Path(sys.argv[1] if len(sys.argv) > 1 else "results-fixture")))
