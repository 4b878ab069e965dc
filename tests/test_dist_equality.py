"""Every built-in axis under 2 and 3 gloo processes gives the single-process rows, and never hangs.

Brute force over sample counts that break naive sharding: 1 (ranks with
nothing), primes, and sizes that leave an uneven last batch (batch size 4).
Each count is first run in this process (training tiny models for one epoch
and evaluating every axis); the distributed runs start from copies of those
checkpoints, so they only evaluate, and their rows must equal the
single-process rows exactly (values compared with ``==``; failed runs too).
The processes are started once per world size with torch.multiprocessing
(:mod:`dist_workers`) and run every case in one process group.

The default run keeps two counts and both world sizes; the full grid is
``e2e``. ``divergent-probe`` issues an extra reduction on one rank: the run
must fail within seconds with a message naming each rank's position, and
the suite's next run must still complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dist_workers import assert_rows_equal, divergent_probe, spawn_suite_runs

SUITE = """
name = "dist-equality"
seeds = [0]
eval_split = "test"
[defaults.data]
dataset = "shapes"
params = { num_samples = 48, image_size = 16, frames = 2 }
batch_size = 4
[defaults.train]
epochs = 1
threads = 1
optimizer = { name = "adamw", lr = 3e-3 }
[runs.classifier]
axes = ["task", "noise", "adversarial", "attention", "importance"]
model.name = "fusion-classifier"
model.fusion = "attention"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 2, output_dim = 8 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 8, output_dim = 8 } }
[runs.image-text]
axes = ["retrieval", "zero-shot", "noise"]
model.name = "dual-encoder"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 2, output_dim = 8 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 8, output_dim = 8 } }
[runs.captioner]
axes = ["task", "attention"]
model.name = "captioner"
data.fields = ["image", "text"]
[runs.text-to-image]
axes = ["task"]
model.name = "text-to-image"
data.fields = ["image", "text"]
[axes.task]
batch_size = 4
kid_subset_size = 2
is_splits = 1
[axes.zero-shot]
batch_size = 4
[axes.retrieval]
ks = [1, 5]
batch_size = 4
[axes.noise]
axis = "robustness.noise"
severities = [2]
batch_size = 4
corruptions = { image = ["gaussian_noise"], text = ["word_dropout"] }
[axes.adversarial]
axis = "robustness.adversarial"
attacks = ["pgd"]
epsilons = [0.03]
l2_epsilons = []
steps = 2
batch_size = 4
[axes.attention]
axis = "interpretability.attention"
batch_size = 4
[axes.importance]
axis = "interpretability.importance"
ig_steps = 2
attribution_samples = 4
batch_size = 4
"""

DIVERGENT = """
name = "dist-divergent"
seeds = [0]
eval_split = "test"
[defaults.data]
dataset = "shapes"
params = { num_samples = 8, image_size = 16, frames = 2 }
batch_size = 4
[defaults.train]
epochs = 1
threads = 1
[runs.first]
axes = ["probe", "task"]
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 2, output_dim = 8 } }
[runs.second]
axes = ["task"]
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 2, output_dim = 8 } }
[axes.probe]
axis = "divergent-probe"
[axes.task]
"""

STALL = DIVERGENT.replace('axis = "divergent-probe"', 'axis = "stall-probe"').replace("dist-divergent", "dist-stall")


def single_process(suite: Path, out: Path, limit: int) -> None:
    from polymodal.runner import RunOptions, run_suite
    from polymodal.testing import registered_plugin

    with registered_plugin(divergent_probe, name="dist-workers") as plugins:
        run_suite(str(suite), plugins=plugins, options=RunOptions(out=out, limit=limit, progress=False))


def prepare(counts: list[int], worlds: list[int], tmp: Path) -> dict[int, list[dict[str, Any]]]:
    """Single-process runs of every count; the distributed cases (per world size) that start from them."""
    suite = tmp / "suite.toml"
    suite.write_text(SUITE)
    cases: dict[int, list[dict[str, Any]]] = {w: [] for w in worlds}
    for n in counts:
        single_process(suite, tmp / f"one-{n}", n)
        for world in worlds:
            out = tmp / f"w{world}-{n}"
            shutil.copytree(tmp / f"one-{n}" / "runs", out / "runs")
            cases[world].append({"suite": str(suite), "out": str(out), "limit": n, "one": str(tmp / f"one-{n}")})
    return cases


def check_equal(cases: list[dict[str, Any]], world: int) -> None:
    for case in cases:
        one, many, n = Path(case["one"]), Path(case["out"]), case["limit"]
        assert_rows_equal(one, many, f"{world} procs, n={n}")
        if not case.get("resume"):  # where the time went: training and each axis, per run (rank 0's clock)
            timed = [(sorted(r["seconds"]), sorted(["train", *r["axes"]]))
                     for r in json.loads((many / "manifest.json").read_text())["runs"] if r["status"] == "complete"]
            assert timed and all(got == want for got, want in timed), timed
        failed = sorted(r["id"] for r in json.loads((one / "manifest.json").read_text())["runs"]
                        if r["status"] == "failed")
        for rank in range(world):  # every rank knows which runs failed (its exit status depends on it)
            report = json.loads((many / f"rank{rank}.json").read_text())
            assert sorted(report["errors"]) == failed, (world, n, rank, report)


def interrupted_copy(one: Path, out: Path) -> None:
    """``one`` as a run killed part-way leaves it: three commit records, then a few rows of a torn unit."""
    shutil.copytree(one, out)
    records = (one / "progress.jsonl").read_text().splitlines()[:3]
    size = json.loads(records[-1])["results_bytes"]
    data = (one / "results.jsonl").read_bytes()
    torn = b"".join(data[size:].splitlines(keepends=True)[:3])
    assert size and torn, "the suite changed: pick another place to interrupt"
    (out / "progress.jsonl").write_text("\n".join(records) + "\n")
    (out / "results.jsonl").write_bytes(data[:size] + torn)


def probe_case(tmp: Path, name: str, text: str, **extra: Any) -> dict[str, Any]:
    suite = tmp / f"{name}.toml"
    suite.write_text(text)
    single_process(suite, tmp / f"{name}-trained", 4)  # train here; the ranks only evaluate
    shutil.copytree(tmp / f"{name}-trained" / "runs", tmp / name / "runs")
    return {"suite": str(suite), "out": str(tmp / name), "limit": 4, **extra}


@pytest.fixture(scope="module")
def default_grid(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, list[dict[str, Any]]]:
    """One process group per world size runs every case: the divergent suite first, then 1 and 5 samples.

    1: some ranks get nothing; 5: a prime, one batch of 4 then a batch of 1. The divergent suite going
    first also proves the group stays usable after a mismatch; the stalling suite goes last.
    """
    tmp = tmp_path_factory.mktemp("dist-equality")
    cases = prepare([1, 5], [2, 3], tmp)
    # A mismatch must be reported as one, not as this timeout (which only stops a regression hanging CI).
    # The stall case goes last: after a timeout the group is out of step for good.
    spawn_suite_runs(2, [probe_case(tmp, "divergent", DIVERGENT), *cases[2],
                         probe_case(tmp, "stall", STALL, timeout_s=2)], timeout_s=120)
    # Resume with another process count: a 1-process run cut short, finished by 3 ranks.
    resumed = {**cases[3][-1], "out": str(tmp / "resumed-3"), "resume": True}
    interrupted_copy(Path(resumed["one"]), Path(resumed["out"]))
    spawn_suite_runs(3, [*cases[3], resumed], timeout_s=120)
    return {**cases, "resumed": [resumed]}


@pytest.mark.parametrize("world", [2, 3])
def test_every_axis_equals_one_process_at_awkward_sizes(default_grid: dict[int, list[dict[str, Any]]],
                                                        world: int) -> None:
    check_equal(default_grid[world], world)


@pytest.mark.e2e
def test_every_axis_equals_one_process_full_grid(tmp_path: Path) -> None:
    cases = prepare([2, 3, 7, 41], [2, 3], tmp_path)  # 41: the size the hang was reported at
    for world in (2, 3):
        spawn_suite_runs(world, cases[world], timeout_s=300)
        check_equal(cases[world], world)


def test_resume_with_another_process_count_gives_the_same_rows(default_grid: dict[str, Any]) -> None:
    check_equal(default_grid["resumed"], 3)


def test_a_divergent_axis_fails_fast_with_every_ranks_position(default_grid: Any) -> None:
    out = Path(default_grid[2][0]["out"]).parent / "divergent"
    manifest = json.loads((out / "manifest.json").read_text())
    status = {r["label"]: r for r in manifest["runs"]}
    assert status["second"]["status"] == "complete", status["second"]
    assert status["first"]["status"] == "failed"
    error = status["first"]["error"]
    assert ("ranks reached different collectives: rank 0 at run first/seed=0 / axis probe, all_reduce_sum #1; "
            "rank 1 at run first/seed=0 / axis probe, all_gather_object #1") in error, error
    assert manifest["failed_runs"] == 1
    for rank in (0, 1):
        assert json.loads((out / f"rank{rank}.json").read_text())["failed_runs"] == 1


def test_a_stalled_rank_times_out_and_the_rest_of_the_suite_is_not_run(default_grid: Any) -> None:
    out = Path(default_grid[2][0]["out"]).parent / "stall"
    manifest = json.loads((out / "manifest.json").read_text())
    status = {r["label"]: r for r in manifest["runs"]}
    assert status["first"]["status"] == "failed", status["first"]
    assert "did not answer within 2 s" in status["first"]["error"], status["first"]["error"]
    assert "run first/seed=0 / axis probe, all_reduce_sum #1" in status["first"]["error"]
    assert status["second"]["status"] == "failed"
    assert status["second"]["error"].startswith("not run: collective all_reduce_sum"), status["second"]["error"]
    for rank in (0, 1):
        assert json.loads((out / f"rank{rank}.json").read_text())["failed_runs"] == 2
