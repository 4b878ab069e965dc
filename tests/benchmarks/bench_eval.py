"""Evaluation throughput: polymodal's evaluation loop vs a hand-written PyTorch loop.

Same trained-from-seed model (fusion classifier from the shapes experiment
file), same split, same data path (the experiment's modalities and collator),
same batch size. Ours is :func:`polymodal_plugins.training.evaluation.evaluate`
over ``TrainingData.eval_batches`` (what ``polymodal train`` runs after each
epoch: loss and accuracy); the hand-written loop is ``no_grad`` + a
``DataLoader`` + ``cross_entropy`` + ``argmax``. Runs are interleaved and the
best of the repeats is kept. Both must report the same loss and accuracy.

    python tests/benchmarks/bench_eval.py [--samples 2000] [--repeats 3]

Prints one JSON row as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "plugins" / "training" / "experiments" / "shapes-fusion.toml"


def hand_written(model, dataset, collate, batch_size: int) -> dict[str, float]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for batch in loader:
            logits = model(batch)
            y = batch.targets["label"]
            total += float(torch.nn.functional.cross_entropy(logits, y)) * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            n += len(y)
    return {"loss": total / n, "acc": correct / n}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from polymodal.experiment import load_experiment
    from polymodal.plugins import build_plugin_manager
    from polymodal_plugins.training.evaluation import evaluate
    from polymodal_plugins.training.trainer import prepare

    plugins = build_plugin_manager()
    config = load_experiment(EXPERIMENT, [f"data.params.num_samples={args.samples}"])
    model, _ctx, data = prepare(config, plugins, str(EXPERIMENT))
    split = config.data.train_split if hasattr(config.data, "train_split") else "train"
    dataset = data.splits[split]
    batch_size = config.data.eval_batch_size or config.data.batch_size
    # one untimed pass of each first: thread pools, allocator and first-call costs hit neither timing
    hand_written(model, dataset, data.collate, batch_size)
    evaluate(model, data.eval_batches(split), torch.device("cpu"))
    ours_s, hand_s = [], []
    for r in range(args.repeats):
        t = time.perf_counter()
        ref = hand_written(model, dataset, data.collate, batch_size)
        hand_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        got = evaluate(model, data.eval_batches(split), torch.device("cpu"))
        ours_s.append(time.perf_counter() - t)
        print(f"repeat {r + 1}: hand-written {len(dataset) / hand_s[-1]:.0f} samples/s, "
              f"polymodal evaluate {len(dataset) / ours_s[-1]:.0f} samples/s", file=sys.stderr)
    diff = max(abs(got["loss"] - ref["loss"]), abs(got["acc"] - ref["acc"]))
    ours, hand = len(dataset) / min(ours_s), len(dataset) / min(hand_s)
    ratio = ours / hand
    print(f"evaluation, fusion classifier on shapes ({len(dataset)} samples, batch {batch_size}): "
          f"polymodal {ours:.0f} samples/s, hand-written {hand:.0f} samples/s, ratio {ratio:.3f}, "
          f"max |diff| loss/acc {diff:.1e}", file=sys.stderr)
    print(json.dumps({"benchmark": f"evaluation loop, fusion classifier, {len(dataset)} samples",
                      "ours": round(ours, 1), "alternative": round(hand, 1), "unit": "samples/s",
                      "alternative_name": "hand-written no_grad loop", "ratio": round(ratio, 3),
                      "ratio_means": "throughput ours / alternative", "max_abs_diff": diff,
                      "goal": "ratio >= 0.95, same loss/acc", "met": ratio >= 0.95 and diff < 1e-6}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
