"""Train the captioner and the text-to-image model on ``shapes`` and measure what the issue asks.

Prints, as JSON lines (progress goes to stderr):

* captioner: share of test captions that name the right shape, the right
  colour, and both (greedy and beam 3);
* text-to-image: share of generated test images whose dominant colour (mean
  of the most saturated pixels, nearest palette colour) is the caption's.

Run: ``python tests/benchmarks/bench_generative_shapes.py [--samples 2000] [--epochs 6]``.
Both models train from scratch through the platform's own trainer.

Measured (2 shared CPU cores, 1 thread, ``--samples 1000 --epochs 8``, test split of 1000):
captioner greedy: shape named 78.4 %, colour 94.3 %, both 74.7 % (beam 3: 78.6 / 94.7 / 75.1 %),
43 s training; text-to-image dominant colour 78.2 % (chance 16.7 %), 69 s training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from polymodal.experiment import experiment_from_dict  # noqa: E402
from polymodal.plugins import PluginSettings, build_plugin_manager  # noqa: E402
from polymodal_plugins.training.trainer import Trainer, prepare  # noqa: E402


def experiment(model: dict, samples: int, epochs: int, batch: int, lr: float):
    return experiment_from_dict({
        "name": model["name"],
        "data": {"dataset": "shapes", "params": {"num_samples": samples}, "fields": ["image", "text"],
                 "batch_size": batch},
        "model": model,
        "train": {"epochs": epochs, "optimizer": {"name": "adamw", "lr": lr}, "evaluate": False},
    }, "bench_generative_shapes")


def train(cfg, plugins):
    model, ctx, data = prepare(cfg, plugins, "bench")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        Trainer(cfg, model, ctx, data, out, plugins=plugins, progress=True).fit()
    return model, data, time.perf_counter() - t0


def palette():
    """The shapes dataset's names and colours, imported only after the plugin manager is built
    (importing ``polymodal_plugins.datasets.shapes`` first would shadow the dataset's plugin object)."""
    from polymodal_plugins.datasets import shapes

    return shapes.SHAPES, shapes.COLORS, shapes._RGB


def words_of(batch, key, names):
    return [names[int(i)] for i in batch.targets[key]]


def bench_captioner(plugins, args):
    cfg = experiment({"name": "captioner", "params": {"max_len": 12, "hidden": args.hidden, "feature_dim": 64, "cnn_width": 16}}, args.samples, args.epochs, 32, 2e-3)
    model, data, secs = train(cfg, plugins)
    model.eval()
    SHAPES, COLORS, _ = palette()
    hits = {1: [0, 0, 0], 3: [0, 0, 0]}
    n = 0
    example = None
    for batch in data.eval_batches("test"):
        shapes, colours = words_of(batch, "shape", SHAPES), words_of(batch, "color", COLORS)
        for beam in (1, 3):
            for cap, s, c in zip(model.caption(batch, max_len=12, beam_size=beam), shapes, colours, strict=True):
                words = cap.split()
                hits[beam][0] += s in words
                hits[beam][1] += c in words
                hits[beam][2] += s in words and c in words
                example = example or cap
        n += len(batch)
    for beam, (s, c, both) in hits.items():
        print(json.dumps({"model": "captioner", "decode": "greedy" if beam == 1 else f"beam{beam}", "test_n": n,
                          "shape_acc": s / n, "colour_acc": c / n, "both_acc": both / n,
                          "train_seconds": round(secs, 1), "example": example}))


def dominant_colour(img: torch.Tensor) -> int:
    """Nearest palette colour to the mean of the 10% most saturated pixels of ``[3, H, W]`` in [0, 1]."""
    px = img.flatten(1).T  # [HW, 3]
    sat = px.max(1).values - px.min(1).values
    top = px[sat.argsort(descending=True)[: max(1, px.shape[0] // 10)]].mean(0) * 255
    return int(((torch.tensor(palette()[2]) - top) ** 2).sum(1).argmin())


def bench_text_to_image(plugins, args):
    cfg = experiment({"name": "text-to-image"}, args.samples, args.epochs, 32, 2e-3)
    model, data, secs = train(cfg, plugins)
    model.eval()
    COLORS = palette()[1]
    right, n = 0, 0
    with torch.no_grad():
        for batch in data.eval_batches("test"):
            images = model.generate(batch)
            for img, c in zip(images, batch.targets["color"], strict=True):
                right += dominant_colour(img) == int(c)
            n += len(batch)
    print(json.dumps({"model": "text-to-image", "test_n": n, "dominant_colour_acc": right / n,
                      "chance": 1 / len(COLORS), "train_seconds": round(secs, 1)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128, help="captioner LSTM size")
    parser.add_argument("--only", choices=["captioner", "text-to-image"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plugins = build_plugin_manager(PluginSettings())
    if args.only in (None, "captioner"):
        bench_captioner(plugins, args)
    if args.only in (None, "text-to-image"):
        bench_text_to_image(plugins, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
