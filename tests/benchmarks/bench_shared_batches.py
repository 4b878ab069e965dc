"""Benchmark: a run's axes with shared clean evaluation batches vs each axis preprocessing the split itself.

Run: ``python tests/benchmarks/bench_shared_batches.py [--samples 256] [--limit 64] [--repeats 2]``.
One fusion classifier (image + text + audio, the quick-start's) goes through
the quick-start's classifier axes (task, noise, adversarial, attention,
importance, with its settings) twice per repeat, interleaved: with the
shared clean batches (:mod:`polymodal.clean_batches`) and with the cache off
(``POLYMODAL_EVAL_CACHE_MB=0``, what every axis did before), after one
warm-up pass. Prints the best wall and CPU time of each side (CPU time, one
torch thread, is steadier on a shared machine), their ratio, and the largest
difference between the two sides' result rows (they must be equal).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

import polymodal
from polymodal.clean_batches import LIMIT_ENV
from polymodal.evaluation import AxisContext
from polymodal.experiment import experiment_from_dict

#: The quick-start suite's classifier axes and their settings (plugins/suites/quickstart.toml).
AXES = [
    ("task", {"feature_extractor": "cnn"}),
    ("robustness.noise", {"severities": [1, 3, 5], "corruptions": {"image": ["gaussian_noise", "occlusion"],
                                                                   "text": ["word_dropout"], "audio": ["gaussian_noise"]}}),
    ("robustness.adversarial", {"attacks": ["fgsm", "pgd"], "norms": ["linf"], "epsilons": [0.0078, 0.0314],
                                "steps": 2, "targets": [["image", "text", "audio"]]}),
    ("interpretability.attention", {}),
    ("interpretability.importance", {"ig_steps": 8, "attribution_samples": 32}),
]


def setup(samples: int) -> tuple[Any, Any]:
    from polymodal_plugins.training.trainer import prepare

    config = experiment_from_dict({
        "data": {"dataset": "shapes", "params": {"num_samples": samples, "image_size": 32, "frames": 4,
                                                 "distractors": 1}, "batch_size": 32},
        "model": {"name": "fusion-classifier", "fusion": "concat",
                  "encoders": {"image": {"name": "cnn", "params": {"width": 16, "depth": 3, "output_dim": 64}},
                               "text": {"name": "gru", "params": {"hidden_dim": 64, "output_dim": 64}},
                               "audio": {"name": "audio"}}},
        "train": {"epochs": 0, "device": "cpu", "evaluate": False, "amp": "off"},
    })
    model, mctx, data = prepare(config, polymodal.get_plugins(), "<bench>")
    return model.eval(), (mctx, data)


def run_axes(model: Any, mctx: Any, data: Any, limit: int, tmp: Path) -> list[tuple[str, str, float | None]]:
    plugins = polymodal.get_plugins()
    rows = []
    for name, params in AXES:
        axis = plugins.build("axes", name, **params)
        ctx = AxisContext(run="r", axis=name, conditions={"model": "fusion-classifier"}, device=torch.device("cpu"),
                          plugins=plugins, model_ctx=mctx, out_dir=tmp, limit=limit)
        torch.manual_seed(0)
        with torch.no_grad() if getattr(axis, "no_grad", False) else contextlib.nullcontext():
            rows += [(r.axis, json.dumps([r.metric, r.conditions], sort_keys=True, default=str), r.value)
                     for r in axis.run(model, data, ctx)]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=256, help="shapes samples (the test split is a part)")
    p.add_argument("--limit", type=int, default=64, help="evaluated samples per split")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    model, _ = setup(args.samples)
    _, (mctx, data) = setup(args.samples)
    run_axes(model, mctx, data, args.limit, tmp / "warm-up")  # imports, feature extractor, first calls
    best = {"shared": float("inf"), "off": float("inf")}
    cpu = {"shared": float("inf"), "off": float("inf")}
    rows: dict[str, list[Any]] = {}
    for rep in range(args.repeats):
        for side in ("off", "shared") if rep % 2 else ("shared", "off"):
            os.environ[LIMIT_ENV] = "0" if side == "off" else "256"
            _, (mctx, data) = setup(args.samples)  # fresh data (and cache) per pass; the same model
            start, start_cpu = time.perf_counter(), time.process_time()
            rows[side] = run_axes(model, mctx, data, args.limit, tmp / f"{side}{rep}")
            wall, used = time.perf_counter() - start, time.process_time() - start_cpu
            best[side], cpu[side] = min(best[side], wall), min(cpu[side], used)
            print(f"repeat {rep + 1}, {side}: {wall:.2f} s wall, {used:.2f} s CPU", file=sys.stderr, flush=True)
    same_keys = [k[:2] for k in rows["shared"]] == [k[:2] for k in rows["off"]]
    diffs = [abs(a[2] - b[2]) for a, b in zip(rows["shared"], rows["off"], strict=True)
             if a[2] is not None and b[2] is not None]
    diff = max(diffs, default=0.0) if same_keys else float("inf")
    ratio = best["off"] / best["shared"]
    print(f"shared clean batches {best['shared']:.2f} s ({cpu['shared']:.2f} s CPU), each axis preprocessing "
          f"{best['off']:.2f} s ({cpu['off']:.2f} s CPU), speed-up {ratio:.2f} (CPU {cpu['off'] / cpu['shared']:.2f}), "
          f"max |diff| {diff:.1e}, load average {os.getloadavg()[0]:.1f}")
    print(json.dumps({"benchmark": f"quick-start classifier axes, {args.limit} test samples, shared clean batches",
                      "ours": round(best["shared"], 3), "alternative": round(best["off"], 3), "unit": "s",
                      "alternative_name": "every axis preprocessing the split (POLYMODAL_EVAL_CACHE_MB=0)",
                      "ratio": round(ratio, 3), "ratio_means": "speed-up (alternative time / ours)",
                      "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
                      "max_abs_diff": diff, "goal": "identical rows", "met": diff == 0.0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
