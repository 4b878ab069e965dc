"""The suite runner: sweeps, validation, failure isolation, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakedist import write_dist
from polymodal.errors import ConfigError, PolymodalError
from polymodal.suite import expand_suite, load_suite_dict

PROBE = '''
import time
from polymodal import component

probe = component("axes", "probe", "probe_impl:ProbeAxis", description="Accuracy under scaled inputs.")
'''

PROBE_IMPL = '''
import os
import time
import torch

class ProbeAxis:
    """Accuracy with the image scaled down level by level; slow on purpose when asked."""
    requires = frozenset({"classify"})

    def __init__(self, levels: int = 3, delay: float = 0.0, explode: bool = False):
        self.levels, self.delay, self.explode = levels, delay, explode

    def run(self, model, data, ctx):
        if self.explode and "attention" in ctx.run:
            raise RuntimeError("probe exploded on purpose")
        ds = data.splits[ctx.split]
        n = ctx.limited(len(ds))
        for level in range(self.levels):
            if ctx.is_done("accuracy", level=level):
                continue
            correct = 0
            for start in range(0, n, 16):
                batch = data.collate([ds[i] for i in range(start, min(n, start + 16))]).to(ctx.device)
                batch.inputs["image"].data = batch.inputs["image"].data * (1.0 - 0.3 * level)
                with torch.no_grad():
                    pred = model.predict(batch).argmax(-1)
                correct += int((pred == batch.targets["label"]).sum())
                ctx.progress(start + 16, n, f"level {level}")
            time.sleep(self.delay)
            yield ctx.row("accuracy", correct / n, level=level)
        ctx.artifact("importance", {"importance": {"image": 1.0}, "method": "probe"})
'''

SUITE = """
name = "tiny"
seeds = [0]
[defaults.data]
dataset = "shapes"
params = { num_samples = 48, image_size = 16, frames = 2 }
batch_size = 16
[defaults.train]
epochs = 2
threads = 1
[runs.clf]
model.name = "fusion-classifier"
model.fusion = ["concat", "attention"]
model.encoders.image = { name = "cnn", params = { width = 8, depth = 2, output_dim = 16 } }
[axes.probe]
levels = 3
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_dist(tmp_path / "site", "pm-probe", {"probe_plugin": PROBE, "probe_impl": PROBE_IMPL},
                      {"axis.probe": "probe_plugin:probe"})


def polymodal(args: list[str], site: Path, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    env["PYTHONPATH"] = str(site)
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "polymodal", *args]
    if kw.pop("background", False):
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def result_lines(out: Path) -> int:
    """How many rows a run in ``out`` has acknowledged so far."""
    path = out / "results.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_on_progress(p: subprocess.Popen, out: Path, lines: int, timeout: float = 300) -> None:
    """SIGKILL ``p`` once ``out`` holds ``lines`` result rows (0: once training has started), and assert it died.

    Triggering on progress, not on a clock, puts the kill where the test means
    it on a fast machine and a loaded one alike.
    """
    deadline = time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < deadline:
        if (result_lines(out) >= lines) if lines else (out / "runs").exists():
            break
        time.sleep(0.02)  # polling interval only; the trigger is the progress above
    assert p.poll() is None, (f"the run ended (rc {p.returncode}) before reaching {lines} rows; "
                              f"the kill would not interrupt anything: {p.stderr.read() if p.stderr else ''}")
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL


def rows(out: Path) -> list[tuple]:
    found = []
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        found.append((r["run"], r["axis"], r["metric"], json.dumps(r["conditions"], sort_keys=True), r["value"]))
    return found


def test_sweep_expansion_seeds_and_includes(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text('seeds = [1, 2]\n[defaults.data]\ndataset = "shapes"\n[axes.a]\n[axes.b]\n')
    (tmp_path / "s.toml").write_text(
        'include = ["base.toml"]\nname = "abl"\n'
        '[runs.x]\nmodel.name = "fusion-classifier"\nmodel.fusion = ["concat", "weighted", "attention"]\n'
        'sweep = { "train.optimizer.lr" = [0.001, 0.01] }\naxes = ["a"]\n'
        '[runs.y]\nmodel.name = "dual-encoder"\n'
    )
    suite = expand_suite(load_suite_dict(tmp_path / "s.toml", ["runs.y.data.batch_size=7"]), "s.toml")
    ids = [p.id for p in suite.runs]
    assert len(ids) == 3 * 2 * 2 + 2 and len(set(ids)) == len(ids)
    assert "x/fusion=weighted/train.optimizer.lr=0.01/seed=2" in ids
    x = next(p for p in suite.runs if p.id == "x/fusion=attention/train.optimizer.lr=0.001/seed=1")
    assert x.experiment["model"]["fusion"] == "attention" and x.experiment["train"]["seed"] == 1
    assert x.experiment["train"]["optimizer"]["lr"] == 0.001 and x.axes == ("a",)
    y = [p for p in suite.runs if p.label == "y"]
    assert [p.axes for p in y] == [("a", "b")] * 2 and y[0].experiment["data"]["batch_size"] == 7
    (tmp_path / "loop.toml").write_text('include = ["loop.toml"]\n')
    with pytest.raises(ConfigError, match="include cycle"):
        load_suite_dict(tmp_path / "loop.toml")


@pytest.mark.e2e
def test_suite_problems_are_reported_all_at_once(site: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[defaults.data]\ndataset = "shapez"\n'
        '[runs.a]\nmodel.name = "fusion-classifier"\nmodel.fusion = "concatt"\nmodel.encoders.image.name = "cnn"\n'
        'axes = ["probe", "missing"]\n'
        '[runs.b]\nmodel.name = "dual-encoder"\nmodel.encoders.image.name = "cnn"\nmodel.encoders.text.name = "gru"\n'
        'axes = ["probe"]\ntrain.epochz = 1\n'
        '[runs.c]\nmodel.name = "captioner"\naxes = ["probe"]\nmodel.encoders.image.name = "cnn"\n'
        '[axes.probe]\nlevels = 2\nbogus = 1\n'
    )
    proc = polymodal(["run", str(bad), "--out", str(tmp_path / "o")], site)
    assert proc.returncode == 2
    err = proc.stderr
    assert "runs.a.axes: no [axes.missing] table" in err
    assert "Traceback" not in err
    proc_missing_axis_fixed = bad.read_text().replace(', "missing"', "")
    bad.write_text(proc_missing_axis_fixed)
    err = polymodal(["run", str(bad), "--out", str(tmp_path / "o")], site).stderr
    assert "problem(s)" in err
    assert "unknown dataset 'shapez' (did you mean 'shapes'?)" in err
    assert "unknown fusion 'concatt' (did you mean 'concat'?)" in err
    assert "train.epochz: unknown key (did you mean 'epochs'?)" in err
    assert "axes.probe: parameters of axis 'probe'" in err and "bogus" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.e2e
def test_run_writes_rows_manifest_reports_and_isolates_failures(site: Path, tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.replace("levels = 3", "levels = 2\nexplode = true"))
    out = tmp_path / "out"
    proc = polymodal(["run", str(suite), "--out", str(out)], site)
    assert proc.returncode == 1, proc.stderr  # one run failed, the other completed
    manifest = json.loads((out / "manifest.json").read_text())
    status = {r["id"]: r["status"] for r in manifest["runs"]}
    assert status == {"clf/fusion=concat/seed=0": "complete", "clf/fusion=attention/seed=0": "failed"}
    assert manifest["versions"]["torch"] and "axis.probe" in manifest["versions"]["plugins"]
    found = rows(out)
    probe = [r for r in found if r[1] == "probe"]
    assert [json.loads(r[3])["level"] for r in probe] == [0, 1]
    assert all(r[0] == "clf/fusion=concat/seed=0" for r in probe)
    errors = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()
              if json.loads(line)["metric"] == "error"]
    assert len(errors) == 1 and "probe exploded on purpose" in errors[0]["extra"]["traceback"]
    assert (out / "report.html").stat().st_size > 1000 and (out / "report.md").exists()
    proc = polymodal(["run", str(suite), "--out", str(out)], site)
    assert proc.returncode == 2 and "already holds results" in proc.stderr
    proc = polymodal(["run", str(suite), "--out", str(tmp_path / "o2"), "--fail-fast", "--no-report"], site)
    assert proc.returncode == 2 and "--fail-fast" in proc.stderr


@pytest.mark.e2e
def test_unwritable_output_fails_before_any_work(site: Path, tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = polymodal(["run", str(suite), "--out", str(blocker / "out")], site)
    assert proc.returncode == 2 and "cannot write there" in proc.stderr
    assert "epoch" not in proc.stderr


@pytest.mark.e2e
def test_sigkill_then_resume_gives_exactly_the_uninterrupted_rows(site: Path, tmp_path: Path) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.replace("levels = 3", "levels = 3\ndelay = 0.4"))
    ref = tmp_path / "ref"
    proc = polymodal(["run", str(suite), "--out", str(ref), "--no-report", "-q"], site)
    assert proc.returncode == 0, proc.stderr
    expected = sorted(rows(ref))
    out = tmp_path / "killed"
    # kill at several moments: during the first run's training, mid-axis, and in the second run
    for wanted_lines in (0, 7, 12):
        p = polymodal(["run", str(suite), "--out", str(out), "--no-report", "-q",
                       *(["--resume"] if (out / "manifest.json").exists() else [])], site, background=True)
        kill_on_progress(p, out, wanted_lines)
    proc = polymodal(["run", str(suite), "--out", str(out), "--resume", "--no-report", "-q"], site)
    assert proc.returncode == 0, proc.stderr
    got = rows(out)
    assert len(got) == len(set(got)), "duplicate rows after resume"
    assert sorted(got) == expected


def test_a_trainer_breaking_its_contract_is_named(tmp_path):
    """A trainer returning the wrong thing fails its run with a one-line reason naming the trainer."""
    from polymodal import component
    from polymodal.runner import TrainedRun
    from polymodal.testing import run_suite_with

    suite = tmp_path / "s.toml"
    suite.write_text('trainer = "bad"\n[defaults.data]\ndataset = "shapes"\nparams = { num_samples = 8, image_size = 8 }\n'
                     '[runs.clf]\nmodel.name = "fusion-classifier"\nmodel.encoders.image = { name = "cnn" }\n'
                     '[axes.task]\n')
    cases = [({"model": None}, "PluginError: trainer 'bad' returned dict; expected a polymodal.runner.TrainedRun"),
             (TrainedRun(model=None, model_ctx=None, data=None, figures={"loss": 0.5}),
              "PluginError: trainer 'bad': figures must map split -> {metric: number}")]
    for i, (returned, message) in enumerate(cases):
        def bad(config, plugins, out_dir, *, resume, progress, device=None, limit=None, returned=returned):
            return returned

        rows = run_suite_with(suite, component("trainers", "bad", bad), out=tmp_path / f"out{i}", limit=4)
        errors = [r["extra"]["error"] for r in rows if r["axis"] == "runner"]
        assert len(errors) == 1 and errors[0].startswith(message), errors
