"""Wall time of each axis on tiny shapes models (the quick-start budget), with their headline figures.

Run: ``python tests/benchmarks/bench_axes.py [--limit N]``; prints one line per axis.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axes_models import context, trained  # noqa: E402

import polymodal  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp()
    plugins = polymodal.get_plugins()
    plan = [("task", "image", {}), ("interpretability.importance", "classifier", {}),
            ("interpretability.attention", "attention", {}), ("retrieval", "dual", {}),
            ("zero-shot", "dual", {"candidates": ["split"]})]
    for axis_name, kind, params in plan:
        t0 = time.perf_counter()
        model, data = trained(kind, tmp)
        trained_s = time.perf_counter() - t0
        axis = plugins.build("axes", axis_name, **params)
        ctx = context(Path(tmp), axis_name, limit=args.limit)
        t1 = time.perf_counter()
        rows = list(axis.run(model, data, ctx))
        took = time.perf_counter() - t1
        head = ", ".join(f"{r.metric}{'/' + str(r.conditions.get('modality') or r.conditions.get('direction') or '')}"
                         f"={r.value:.3f}" for r in rows[:4] if r.value is not None)
        print(f"{axis_name:30s} model={kind:10s} train={trained_s:5.1f}s axis={took:5.1f}s rows={len(rows):3d}  {head}")


if __name__ == "__main__":
    main()
