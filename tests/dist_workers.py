"""In-process gloo workers for the distributed tests: one process group, many suite runs.

``spawn_suite_runs(world, cases)`` starts ``world`` processes with
``torch.multiprocessing`` (no torchrun per case: start-up is paid once),
joins them into one gloo group and lets each run every case -- a suite with
``--limit n`` into a results folder -- through the ordinary runner, exactly
as ``polymodal run`` under torchrun does. Each rank reports the manifest's
failed-run count and the run errors per case in ``<out>/rank<r>.json``.

Also here: ``divergent-probe``, an axis that deliberately takes a different
path on rank 1 (an extra gather), to prove the guard turns it into an error.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from polymodal import component


class DivergentProbe:
    """Rank 1 gathers once more than the others: the kind of bug the guard must catch."""

    requires = frozenset()

    def __init__(self, extra_rank: int = 1) -> None:
        self.extra_rank = extra_rank

    def run(self, model: Any, data: Any, ctx: Any) -> Any:
        if ctx.rank == self.extra_rank:
            ctx.all_gather_object("only me")  # a collective only this rank issues
        total = ctx.all_reduce_sum([1.0, 2.0])
        yield ctx.row("ranks", total[0])


divergent_probe = component("axes", "divergent-probe", "dist_workers:DivergentProbe",
                            description="Test axis: an extra gather on one rank (must fail fast, never hang).")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, cases: list[dict[str, Any]], timeout_s: float) -> None:
    os.environ.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="",
                      POLYMODAL_COLLECTIVE_TIMEOUT=str(timeout_s))
    import torch
    import torch.distributed as dist

    from polymodal import collective
    from polymodal.runner import RunOptions, run_suite
    from polymodal.testing import registered_plugin

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout_s))
    try:
        with registered_plugin(divergent_probe, name="dist-workers") as plugins:
            for case in cases:
                collective.reset()
                out = Path(case["out"])
                options = RunOptions(out=out, resume=case.get("resume", False), limit=case["limit"],
                                     progress=False, rank=rank, world_size=world)
                _suite, manifest = run_suite(case["suite"], plugins=plugins, options=options)
                report = {"failed_runs": manifest.get("failed_runs", 0),
                          "errors": {r["id"]: r.get("error") for r in manifest.get("runs", []) if r.get("error")}}
                (out / f"rank{rank}.json").write_text(json.dumps(report))
                collective.barrier("case done")
    finally:
        dist.destroy_process_group()


def spawn_suite_runs(world: int, cases: list[dict[str, Any]], timeout_s: float = 120.0) -> None:
    """Run every case (``{"suite", "out", "limit"}``) on ``world`` gloo processes; raise if a process failed."""
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(world, free_port(), cases, timeout_s), nprocs=world, join=True)
