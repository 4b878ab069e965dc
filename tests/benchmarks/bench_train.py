"""Training throughput: ``polymodal train``'s loop vs a hand-written PyTorch loop.

Same model (fusion classifier, built from the same experiment file and seed),
same data pipeline (shapes through the same modalities and collator), same
batch size, optimiser and gradient clipping. Runs are interleaved (A B A B
...) so that load from other processes hits both alike; the best of the
repeats is reported, as is usual for timing. Prints steps/s of both and the
ratio (goal: polymodal within 5% of the hand-written loop).

    python tests/benchmarks/bench_train.py [--samples 512] [--repeats 3] [--fusion concat]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "plugins" / "training" / "experiments" / "shapes-fusion.toml"


def overrides(args: argparse.Namespace) -> list[str]:
    return [f"data.params.num_samples={args.samples}", f"model.fusion={args.fusion}", "train.epochs=1",
            "train.evaluate=false", f"train.threads={args.threads}", "train.schedule.name=\"constant\"",
            "train.schedule.warmup_steps=0"]


def run_polymodal(args: argparse.Namespace, plugins: object) -> tuple[float, int]:
    from polymodal.experiment import load_experiment
    from polymodal_plugins.training.trainer import Trainer, prepare

    config = load_experiment(EXPERIMENT, overrides(args))
    model, ctx, data = prepare(config, plugins, str(EXPERIMENT))
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, model, ctx, data, out, plugins=plugins, progress=not args.no_progress)
        outcome = trainer.fit()
        # fit() also writes checkpoints and metrics; by default time the loop only, as for the hand loop.
        return (outcome.seconds if args.include_io else outcome.step_seconds), outcome.steps


def run_by_hand(args: argparse.Namespace, plugins: object) -> tuple[float, int]:
    from polymodal.experiment import load_experiment
    from polymodal_plugins.training.trainer import prepare

    config = load_experiment(EXPERIMENT, overrides(args))
    model, _ctx, data = prepare(config, plugins, str(EXPERIMENT))
    g = torch.Generator()
    g.manual_seed(0)
    loader = torch.utils.data.DataLoader(data.splits["train"], batch_size=config.data.batch_size, shuffle=True,
                                         collate_fn=data.collate, generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=config.train.optimizer.lr, weight_decay=0.01)
    start = time.perf_counter()
    steps = 0
    model.train()
    for batch in loader:
        logits = model(batch)
        loss = torch.nn.functional.cross_entropy(logits, batch.targets["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
        opt.step()
        steps += 1
    return time.perf_counter() - start, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fusion", default="concat")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--include-io", action="store_true", help="count polymodal's checkpoint/metrics writing too")
    parser.add_argument("--no-progress", action="store_true", help="turn polymodal's progress line off")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from polymodal.plugins import build_plugin_manager

    plugins = build_plugin_manager()
    # untimed warm-up of both loops: the first run in a process pays thread-pool and allocator start-up
    run_by_hand(args, plugins)
    run_polymodal(args, plugins)
    ours, hand = [], []
    for r in range(args.repeats):
        t, n = run_by_hand(args, plugins)
        hand.append(n / t)
        t, n = run_polymodal(args, plugins)
        ours.append(n / t)
        print(f"repeat {r + 1}: hand-written {hand[-1]:.3f} steps/s, polymodal train {ours[-1]:.3f} steps/s",
              file=sys.stderr)
    best_ours, best_hand = max(ours), max(hand)
    print(f"fusion classifier ({args.fusion}), shapes, {args.samples} samples, batch 64, {args.threads} threads")
    print(f"{'loop':<18}{'steps/s (best)':>16}")
    print(f"{'hand-written':<18}{best_hand:>16.3f}")
    print(f"{'polymodal train':<18}{best_ours:>16.3f}")
    print(f"ratio polymodal/hand-written: {best_ours / best_hand:.3f} (goal >= 0.95)")
    ratio = best_ours / best_hand
    print(json.dumps({"benchmark": f"training loop, fusion classifier ({args.fusion}), {args.samples} samples",
                      "ours": round(best_ours, 3), "alternative": round(best_hand, 3), "unit": "steps/s",
                      "alternative_name": "hand-written AdamW loop", "ratio": round(ratio, 3),
                      "ratio_means": "throughput ours / alternative", "max_abs_diff": None,
                      "goal": "ratio >= 0.95", "met": ratio >= 0.95}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
