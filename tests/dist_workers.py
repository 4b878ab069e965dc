"""In-process gloo workers for the distributed tests: one process group, many suite runs.

``spawn_suite_runs(world, cases)`` starts ``world`` processes with
``torch.multiprocessing`` (no torchrun per case: start-up is paid once),
joins them into one gloo group and lets each run every case -- a suite with
``--limit n`` into a results folder -- through the ordinary runner, exactly
as ``polymodal run`` under torchrun does. Each rank reports the manifest's
failed-run count and the run errors per case in ``<out>/rank<r>.json``.

Also here: ``divergent-probe``, an axis that deliberately takes a different
path on rank 1 (an extra gather), to prove the guard turns it into an error,
and ``stall-probe``, whose rank 1 stalls past the collective timeout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dist_launch import free_port, torchrun_env
from polymodal.distributed import distributed_context
from polymodal.manifest import components


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


class StallProbe:
    """Rank 1 works alone for ``seconds`` before a reduction: longer than the timeout, it must time out."""

    requires = frozenset()

    def __init__(self, seconds: float = 6.0) -> None:
        self.seconds = seconds

    def run(self, model: Any, data: Any, ctx: Any) -> Any:
        import time

        if ctx.rank == 1:
            time.sleep(self.seconds)
        yield ctx.row("ranks", ctx.all_reduce_sum(1.0))


divergent_probe = components(
    ("axes", "divergent-probe", "dist_workers:DivergentProbe",
     {"description": "Test axis: an extra gather on one rank (must fail fast, never hang)."}),
    ("axes", "stall-probe", "dist_workers:StallProbe",
     {"description": "Test axis: one rank stalls past the collective timeout."}),
)


def result_rows(out: Path) -> dict[str, Any]:
    """(run, axis, metric, conditions) -> value of a results folder; a duplicate row fails the test."""
    found: dict[str, Any] = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        key = json.dumps([r["run"], r["axis"], r["metric"], r["conditions"]], sort_keys=True)
        assert key not in found, f"{out}: duplicate row {key}"
        found[key] = r["value"]
    return found


def assert_rows_equal(one: Path, many: Path, label: str) -> None:
    """``many`` (a distributed run) holds exactly ``one``'s rows (a single-process run), values equal with ``==``."""
    a, b = result_rows(one), result_rows(many)
    assert a, f"{label}: the single-process run wrote no rows"
    missing, extra = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    assert not missing and not extra, f"{label}: missing {missing[:3]}, extra {extra[:3]}"
    differ = [(k, a[k], b[k]) for k in a if a[k] != b[k]]
    assert not differ, f"{label}: {len(differ)} rows differ, e.g. {differ[:3]}"


def _worker(rank: int, world: int, port: int, cases: list[dict[str, Any]], timeout_s: float) -> None:
    os.environ.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="",
                      POLYMODAL_COLLECTIVE_TIMEOUT=str(timeout_s))
    import torch
    import torchmetrics  # noqa: F401 - its import starts a thread of its own: counted before the group

    from polymodal import collective
    from polymodal.runner import RunOptions, run_suite
    from polymodal.testing import registered_plugin

    torch.set_num_threads(1)
    before = native_threads()
    # The group comes from polymodal's own torchrun set-up (the environment torchrun would give), so these
    # workers create and free it exactly as `polymodal run` does: a group made here by hand would miss the
    # teardown fix in polymodal.distributed and could abort the worker at interpreter exit.
    os.environ.update(torchrun_env(rank, world, port))
    with distributed_context("cpu"):
        with registered_plugin(divergent_probe, name="dist-workers") as plugins:
            for case in cases:
                collective.reset()
                os.environ[collective.TIMEOUT_ENV] = str(case.get("timeout_s", timeout_s))
                out = Path(case["out"])
                options = RunOptions(out=out, resume=case.get("resume", False), limit=case["limit"],
                                     progress=False, rank=rank, world_size=world)
                _suite, manifest = run_suite(case["suite"], plugins=plugins, options=options)
                report = {"failed_runs": manifest.get("failed_runs", 0),
                          "errors": {r["id"]: r.get("error") for r in manifest.get("runs", []) if r.get("error")}}
                (out / f"rank{rank}.json").write_text(json.dumps(report))
                if collective.broken():  # a timed-out group is out of step: it must be the last case
                    break
                collective.barrier("case done")
    assert_group_threads_joined(rank, before)


def native_threads() -> int:
    """Threads of this process that Python did not start (gloo's, BLAS's, ...), from ``/proc/self/task``."""
    import threading

    return len(os.listdir("/proc/self/task")) - threading.active_count()


def assert_group_threads_joined(rank: int, before: int) -> None:
    """No native thread outlives the group (``before``: counted just before it was created).

    A gloo thread left after ``destroy_process_group`` (the group still held, e.g. by a live DDP wrapper)
    is what aborts a worker at interpreter exit (see ``polymodal.cli.process_exit``); counting makes that
    a deterministic failure instead of a rare SIGABRT. ``tests/test_dist_teardown.py`` proves the fix in
    ``polymodal.distributed`` itself, where nothing but our set-up imports ``torch._dynamo`` first.
    """
    after = native_threads()
    assert after <= before, f"rank {rank}: {after} native threads after destroy_process_group, {before} before the group"


def spawn_suite_runs(world: int, cases: list[dict[str, Any]], timeout_s: float = 120.0) -> None:
    """Run every case (``{"suite", "out", "limit"}``) on ``world`` gloo processes; raise if a process failed."""
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(world, free_port(), cases, timeout_s), nprocs=world, join=True)
