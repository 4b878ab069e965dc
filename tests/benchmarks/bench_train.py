"""Training throughput: ``polymodal train``'s loop vs a hand-written PyTorch loop.

Same model (fusion classifier, built from the same experiment file and seed),
same data pipeline (shapes through the same modalities and collator), same
batch size, optimiser and gradient clipping. Runs are interleaved (A B A B
...) so that load from other processes hits both alike; the best of the
repeats is reported, as is usual for timing. Prints steps/s of both and the
ratio (goal: polymodal within 5% of the hand-written loop). On a shared
machine wall-clock rates swing with other processes' load, so the rate per
CPU-second of this process (``time.process_time``) is printed as well: it
measures the work each loop does and is far less sensitive to neighbours.

    python tests/benchmarks/bench_train.py [--samples 512] [--repeats 3] [--fusion concat]
"""

from __future__ import annotations

import argparse
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
        cpu = time.process_time()
        outcome = trainer.fit()
        cpu = time.process_time() - cpu  # includes the one checkpoint and metrics write
        # fit() also writes checkpoints and metrics; by default time the loop only, as for the hand loop.
        return (outcome.seconds if args.include_io else outcome.step_seconds), cpu, outcome.steps


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
    cpu = time.process_time()
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
    return time.perf_counter() - start, time.process_time() - cpu, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fusion", default="concat")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--include-io", action="store_true", help="count polymodal's checkpoint/metrics writing too")
    parser.add_argument("--no-progress", action="store_true", help="turn polymodal's progress line off")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from polymodal.plugins import build_plugin_manager

    plugins = build_plugin_manager()
    ours, hand, ours_cpu, hand_cpu = [], [], [], []
    for r in range(args.repeats):
        t, c, n = run_by_hand(args, plugins)
        hand.append(n / t)
        hand_cpu.append(n / c)
        t, c, n = run_polymodal(args, plugins)
        ours.append(n / t)
        ours_cpu.append(n / c)
        print(f"repeat {r + 1}: hand-written {hand[-1]:.3f} steps/s ({hand_cpu[-1]:.3f}/cpu-s), "
              f"polymodal train {ours[-1]:.3f} steps/s ({ours_cpu[-1]:.3f}/cpu-s)", file=sys.stderr)
    print(f"fusion classifier ({args.fusion}), shapes, {args.samples} samples, batch 64, {args.threads} threads, "
          f"best of {args.repeats}")
    print(f"{'loop':<18}{'steps/s wall':>14}{'steps/cpu-s':>14}")
    print(f"{'hand-written':<18}{max(hand):>14.3f}{max(hand_cpu):>14.3f}")
    print(f"{'polymodal train':<18}{max(ours):>14.3f}{max(ours_cpu):>14.3f}")
    print(f"ratio polymodal/hand-written: wall {max(ours) / max(hand):.3f}, "
          f"per cpu-second {max(ours_cpu) / max(hand_cpu):.3f} (goal >= 0.95)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
