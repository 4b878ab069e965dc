"""Crash testing by construction: kill (or fill the disk) at the N-th write of a run, resume, compare bytes.

Every durable write and fsync of the platform is a numbered write point
(:mod:`polymodal.faults`). A reference run counts them; each trial sets
``POLYMODAL_FAULT=kill@N`` (SIGKILL at point N) or ``enospc@N`` (a full disk
at point N), asserts the fault happened there, runs ``--resume``, and
requires results.jsonl, artifacts.jsonl, every artifact PNG and the reports
(timestamps aside) to be byte-identical to the uninterrupted run. The suite
trains with mid-run checkpoints and has three axes with several units each,
so the points cover checkpoint saves, unit commits and manifest writes. The
default run tries one seeded kill point; the ``e2e`` lane tries a seeded
sample of 12 points per test and fault kind (48 trials, each two processes:
about 8 minutes on 2 cores), and ``POLYMODAL_CRASH_POINTS=all`` tries every
point (348 trials; ``=N`` a seeded sample of N). Each trial is two fresh
processes, so the full sweep takes over an hour here: it is the command to
run before a release, not in every CI run.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SEED = 20261207
SUITE = """
name = "crash"
seeds = [0]
limit = 16
[defaults.data]
dataset = "shapes"
params = { num_samples = 32, image_size = 16 }
batch_size = 8
[defaults.train]
epochs = 2
threads = 1
checkpoint_every = 2
[runs.clf]
model.name = "fusion-classifier"
model.fusion = "concat"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 1, output_dim = 8 } }
[axes."robustness.noise"]
severities = [1, 3]
corruptions = { image = ["gaussian_noise", "missing"] }
batch_size = 8
[axes."robustness.adversarial"]
attacks = ["fgsm"]
epsilons = [0.01, 0.03]
batch_size = 8
[axes."interpretability.importance"]
methods = ["ablation", "integrated_gradients", "occlusion"]
attribution_samples = 4
examples = 1
ig_steps = 2
batch_size = 8
"""
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def polymodal(args: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    return subprocess.run([sys.executable, "-m", "polymodal", *args], capture_output=True, text=True, timeout=600,
                          env={**base, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env})


def run(suite: Path, out: Path, *, resume: bool = False, **env: str) -> subprocess.CompletedProcess:
    return polymodal(["run", str(suite), "--out", str(out), "-q", *(["--resume"] if resume else [])], **env)


def snapshot(out: Path) -> dict[str, Any]:
    """What must be byte-identical: rows, artifacts and their PNGs, and the reports minus timestamps."""
    snap: dict[str, Any] = {name: (out / name).read_bytes() for name in ("results.jsonl", "artifacts.jsonl")}
    for png in sorted((out / "artifacts").glob("*.png")):
        snap[f"artifacts/{png.name}"] = png.read_bytes()
    report = json.loads((out / "report.json").read_text())
    for key in ("started", "finished", "resumed"):  # when it ran, and how often it was resumed
        report["manifest"].pop(key, None)
    for entry in report["manifest"].get("runs", []):  # how long each step took
        entry.pop("seconds", None)
    report.pop("generated_at")
    report["source"].pop("results_dir")
    snap["report.json"] = json.dumps(report, sort_keys=True)
    snap["report.md"] = TIMESTAMP.sub("<time>", (out / "report.md").read_text()).replace(str(out), "<out>")
    return snap


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], int]:
    root = tmp_path_factory.mktemp("crash")
    suite = root / "s.toml"
    suite.write_text(SUITE)
    count = root / "count"
    proc = run(suite, root / "ref", POLYMODAL_FAULT_COUNT=str(count))
    assert proc.returncode == 0, proc.stderr
    return suite, snapshot(root / "ref"), int(count.read_text())


def trial(suite: Path, reference: dict[str, Any], out: Path, fault: str) -> None:
    kind, n = fault.split("@")
    mark = out.parent / f"{out.name}.mark"
    proc = run(suite, out, POLYMODAL_FAULT=fault, POLYMODAL_FAULT_MARK=str(mark))
    if kind == "kill":
        assert proc.returncode == -9, f"{fault}: the process was not killed ({proc.returncode}): {proc.stderr[-500:]}"
        assert mark.read_text().split()[0] == n, f"{fault}: killed at {mark.read_text()}"
    else:
        assert proc.returncode == 2, f"{fault}: expected a clean failure, got {proc.returncode}: {proc.stderr[-800:]}"
        last = proc.stderr.strip().splitlines()[-1]
        assert "No space left on device" in last and "--resume" in last, last
    resumed = run(suite, out, resume=True)
    assert resumed.returncode == 0, f"{fault}: resume failed: {resumed.stderr[-800:]}"
    got = snapshot(out)
    differ = [k for k in sorted(set(got) | set(reference)) if got.get(k) != reference.get(k)]
    assert not differ, f"{fault}: after --resume these differ from the uninterrupted run: {differ}"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == len({json.dumps([r["run"], r["axis"], r["metric"], r["conditions"]], sort_keys=True)
                             for r in rows})


def test_a_seeded_kill_point_then_resume_equals_the_uninterrupted_run(reference, tmp_path: Path) -> None:
    suite, ref, points = reference
    assert points > 50, points
    trial(suite, ref, tmp_path / "kill", f"kill@{random.Random(SEED).randint(1, points)}")


#: Write points tried per test and fault kind when ``POLYMODAL_CRASH_POINTS`` is unset.
DEFAULT_POINTS = 12


def _chosen(points: int) -> list[int]:
    """A seeded sample of the write points (``POLYMODAL_CRASH_POINTS=N`` or ``all``; the first and last always in)."""
    every = list(range(1, points + 1))
    wanted = os.environ.get("POLYMODAL_CRASH_POINTS", str(DEFAULT_POINTS))
    if wanted == "all":
        return every
    sample = sorted(random.Random(SEED).sample(every[1:-1], max(0, min(int(wanted), points) - 2)))
    return sorted({every[0], *sample, every[-1]})


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["kill", "enospc"])
def test_every_write_point_then_resume_equals_the_uninterrupted_run(reference, tmp_path: Path, kind: str) -> None:
    suite, ref, points = reference
    for n in _chosen(points):
        trial(suite, ref, tmp_path / f"{kind}{n}", f"{kind}@{n}")


def test_a_second_writer_is_refused_while_readers_work(reference, tmp_path: Path) -> None:
    """Issue 15 scenario 5: a second `run --resume` on a folder being written is refused, naming the holder."""
    suite, _ref, _points = reference
    out = tmp_path / "busy"
    hold = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom polymodal.writer_lock import writer_lock\n"
                             "with writer_lock(sys.argv[1], 'polymodal run'):\n    print('locked', flush=True)\n"
                             "    time.sleep(120)\n", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout is not None and hold.stdout.readline().strip() == "locked"
        proc = run(suite, out, resume=True)
        assert proc.returncode == 2 and f"pid {hold.pid} on host" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not (out / "results.jsonl").exists()
    finally:
        hold.kill()
        hold.wait()


EXPERIMENT = """
name = "tiny"
[data]
dataset = "shapes"
params = { num_samples = 32, image_size = 16 }
batch_size = 8
[model]
name = "fusion-classifier"
encoders.image = { name = "cnn", params = { width = 4, depth = 1, output_dim = 8 } }
[train]
epochs = 2
threads = 1
checkpoint_every = 2
device = "cpu"
"""


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["kill", "enospc"])
def test_train_resume_after_a_fault_at_every_write_point_equals_the_uninterrupted_training(
        tmp_path: Path, kind: str) -> None:
    """`polymodal train` killed (or out of disk) at each write, then `--resume`: same weights, same metrics file."""
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    count = tmp_path / "count"

    def train(out: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
        return polymodal(["train", str(tmp_path / "exp.toml"), "--out", str(out), "--quiet", *extra], **env)

    assert train(tmp_path / "ref", POLYMODAL_FAULT_COUNT=str(count)).returncode == 0
    points = int(count.read_text())
    assert points > 20, points
    files = ("checkpoint/model.safetensors", "checkpoint/train_state.pt", "metrics.jsonl")
    expected = {f: (tmp_path / "ref" / f).read_bytes() for f in files}
    for n in _chosen(points):
        out, mark = tmp_path / f"{kind}{n}", tmp_path / f"{kind}{n}.mark"
        proc = train(out, POLYMODAL_FAULT=f"{kind}@{n}", POLYMODAL_FAULT_MARK=str(mark))
        if kind == "kill":
            assert proc.returncode == -9 and mark.read_text().split()[0] == str(n), (n, proc.stderr[-500:])
        else:
            assert proc.returncode != 0 and "No space left on device" in proc.stderr, (n, proc.stderr[-500:])
        resumed = train(out, "--resume")
        assert resumed.returncode == 0, (n, resumed.stderr[-800:])
        differ = [f for f in files if (out / f).read_bytes() != expected[f]]
        assert not differ, f"{kind}@{n}: {differ} differ from the uninterrupted training"
