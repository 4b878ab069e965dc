"""Kill at every write point, in one warm process: a fork per trial instead of two interpreters.

A crash trial (fault at write point N, then ``--resume``, then compare with an
uninterrupted run) spent ~10 s in two fresh interpreters importing torch and
the plugins, and well under a second running the small suite. So this driver
pays the imports once: it forks a *scout* child per case that runs the
uninterrupted reference (counting the write points with
:func:`polymodal.faults.count` and listing the modules it imported), imports
those modules itself, then forks, per trial, a child that calls
:func:`polymodal.faults.arm` and runs the command in-process (SIGKILL or
ENOSPC at write N, which the hook reports in a mark file), then a child that
resumes; the parent compares rows, artifacts and report bytes with the
reference. The parent never builds a plugin manager, takes a writer lock or
passes a write point, and checks after the sweep that it still holds none and
no extra file descriptor, so no trial inherits another's state. Torch runs
one thread (set before any fork). ``--jobs`` trials run side by side.

Run ``python tests/crash_sweep.py WORKDIR --points all`` (or a seeded sample
``--points N``); it prints a JSON summary (``--json FILE`` keeps it) and
exits 1 when any trial differs. ``tests/test_safety_crash_points.py`` runs it.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import random
import re
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

SEED = 20261207
#: A suite that trains with mid-run checkpoints and has three axes with several units each, so its
#: write points cover checkpoint saves, unit commits (rows, artifacts, commit records) and manifests.
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
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")
KINDS = ("kill", "enospc")
#: Imported before the scouts fork: what every run imports (the CLI, the runner, and torchmetrics, which every
#: metric and the collectives build on; alone it is most of a cold run's seconds).
PRELOAD = ("polymodal.cli", "polymodal.runner", "torchmetrics")
#: Seconds one child may take before it counts as hung (and is killed).
CHILD_TIMEOUT = 300.0


def run_snapshot(out: Path) -> dict[str, bytes]:
    """What must be byte-identical after a resume: rows, artifacts and their PNGs, the reports minus timestamps."""
    snap = {name: (out / name).read_bytes() for name in ("results.jsonl", "artifacts.jsonl")}
    for png in sorted((out / "artifacts").glob("*.png")):
        snap[f"artifacts/{png.name}"] = png.read_bytes()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for key in ("started", "finished", "resumed"):  # when it ran, and how often it was resumed
        report["manifest"].pop(key, None)
    for entry in report["manifest"].get("runs", []):  # how long each step took
        entry.pop("seconds", None)
    report.pop("generated_at")
    report["source"].pop("results_dir")
    snap["report.json"] = json.dumps(report, sort_keys=True).encode()
    md = (out / "report.md").read_text(encoding="utf-8")
    snap["report.md"] = TIMESTAMP.sub("<time>", md).replace(str(out), "<out>").encode()
    return snap


def train_snapshot(out: Path) -> dict[str, bytes]:
    """Weights, training state and the metrics log of ``polymodal train``."""
    return {f: (out / f).read_bytes()
            for f in ("checkpoint/model.safetensors", "checkpoint/train_state.pt", "metrics.jsonl")}


@attrs.frozen
class Case:
    """One command under test: how to run it, resume it, and what must come out equal."""

    name: str
    config: str  # file name written in the work folder
    text: str
    run: Callable[[Path, Path], list[str]]  # (config, out) -> CLI argv of the uninterrupted run
    resume: Callable[[Path, Path], list[str]]  # the same after a fault
    after: Callable[[Path], None] | None  # run in the same child once the command succeeded (reports)
    snapshot: Callable[[Path], dict[str, bytes]]
    enospc_rc: int | None  # exit status after a full disk (None: any nonzero)
    enospc_says_resume: bool  # whether the last stderr line must tell the user to --resume


def _reports(out: Path) -> None:
    """The json and markdown reports, with the plugin manager the run built (one build per child, not three).

    These two are compared; html renders the same results folder with matplotlib (~5 s a trial), so the
    sweep runs with ``--no-report`` and renders these instead, through the public report API.
    """
    from polymodal.report import write_reports

    write_reports(out, ["json", "markdown"], progress=None)


CASES = {
    "run": Case("run", "suite.toml", SUITE,
                run=lambda cfg, out: ["run", str(cfg), "--out", str(out), "-q", "--no-report"],
                resume=lambda cfg, out: ["run", str(cfg), "--out", str(out), "-q", "--no-report", "--resume"],
                after=_reports, snapshot=run_snapshot, enospc_rc=2, enospc_says_resume=True),
    "train": Case("train", "experiment.toml", EXPERIMENT,
                  run=lambda cfg, out: ["train", str(cfg), "--out", str(out), "--quiet"],
                  resume=lambda cfg, out: ["train", str(cfg), "--out", str(out), "--quiet", "--resume"],
                  after=None, snapshot=train_snapshot, enospc_rc=None, enospc_says_resume=False),
}


def chosen(points: int, wanted: str) -> list[int]:
    """Write points to try: ``all``, a seeded sample of ``N`` (the first and last always in), or exactly
    ``@N,M,...`` (``-1`` is the last point, ``-2`` the one before: the end of a run, wherever it falls)."""
    every = list(range(1, points + 1))
    if wanted.startswith("@"):
        picked = [int(n) if int(n) > 0 else points + 1 + int(n) for n in wanted[1:].split(",")]
        return sorted({n for n in picked if 1 <= n <= points})
    if wanted == "all" or int(wanted) >= points:
        return every
    sample = random.Random(SEED).sample(every[1:-1], max(0, int(wanted) - 2))
    return sorted({every[0], *sample, every[-1]})


def _child(body: Callable[[], int], log: Path) -> int:
    """Fork; the child sends stdout/stderr to ``log``, runs ``body`` and leaves with its status, never returning."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    rc = 70
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        rc = body()
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report anything, then leave without the parent's atexit/pytest state
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    raise AssertionError("unreachable")  # pragma: no cover


def _cli(argv: list[str], out: Path, after: Callable[[Path], None] | None = None, fault: str | None = None,
         mark: Path | None = None, report: Path | None = None) -> Callable[[], int]:
    """A child body: arm the fault, run ``argv`` through ``polymodal.cli.main``, then ``after(out)`` if it passed."""

    def body() -> int:
        from polymodal import faults
        from polymodal.cli import main

        faults.arm(fault, mark=mark)
        before = set(sys.modules)
        rc = main(argv)
        if rc == 0 and after is not None:
            after(out)
        if report is not None:
            report.write_text(json.dumps({"points": faults.count(), "rc": rc,
                                          "modules": [m for m in sys.modules if m not in before]}))
        return rc

    return body


def _wait(pid: int, timeout: float = CHILD_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"child {pid} ran over {timeout:.0f} s")
        time.sleep(0.005)


@attrs.define
class Trial:
    case: Case
    kind: str
    n: int
    out: Path
    stage: str = "fault"
    started: float = 0.0
    stage_started: float = 0.0
    seconds: float = 0.0
    problem: str | None = None
    what: str = ""

    @property
    def fault(self) -> str:
        return f"{self.kind}@{self.n}"

    @property
    def mark(self) -> Path:
        return self.out.with_name(self.out.name + ".mark")

    @property
    def log(self) -> Path:
        return self.out.with_name(f"{self.out.name}.{self.stage}.log")

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case.name, "fault": self.fault, "at": self.what, "ok": self.problem is None,
                "problem": self.problem, "seconds": round(self.seconds, 3)}


def _tail(path: Path, chars: int = 600) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def _check_fault(trial: Trial, status: int) -> str | None:
    """Why the faulted child did not fail as planned, at the planned point (None: it did)."""
    try:
        point, _, trial.what = trial.mark.read_text(encoding="utf-8").partition(" ")
    except OSError:
        point = ""
    log = _tail(trial.log)
    if trial.kind == "kill":
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            return f"not killed (wait status {status}): {log}"
    else:
        rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        if rc == 0 or (trial.case.enospc_rc is not None and rc != trial.case.enospc_rc):
            return f"expected a clean failure, got exit status {rc}: {log}"
        last = log.strip().splitlines()[-1] if log.strip() else ""
        if "No space left on device" not in last or (trial.case.enospc_says_resume and "--resume" not in last):
            return f"the last line does not say the disk is full and to --resume: {last!r}"
    if point != str(trial.n):
        return f"the fault fired at write point {point or 'none'}, not {trial.n}"
    return None


def _unique_keys(out: Path) -> str | None:
    path = out / "results.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    keys = {json.dumps([r["run"], r["axis"], r["metric"], r["conditions"]], sort_keys=True) for r in rows}
    return None if len(keys) == len(rows) else f"{len(rows) - len(keys)} duplicate result keys"


def _parent_state() -> dict[str, Any]:
    """What a forked child would inherit and must not: a plugin manager, counted write points, open files."""
    from polymodal import faults, plugins

    return {"plugin_manager": plugins._default is not None, "write_points": faults.count(),
            "fds": sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else []}


def sweep(work: Path, cases: list[str], kinds: list[str], points: str, jobs: int, keep: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Run every trial; return the JSON summary (``failed`` lists the trials that lost or changed something)."""
    import torch

    torch.set_num_threads(1)  # no OpenMP pool in the parent: a child forked from one may hang
    if torch.get_num_interop_threads() != 1:
        torch.set_num_interop_threads(1)
    from polymodal.progress import Progress

    started = time.monotonic()
    for module in PRELOAD:  # most of a cold run's import time, paid once instead of again in each scout
        importlib.import_module(module)
    work.mkdir(parents=True, exist_ok=True)
    # the uninterrupted references, each in a scout child that reports its write points and imports
    scouts: dict[str, tuple[int, Path, Path]] = {}
    for name in cases:
        case = CASES[name]
        cfg = work / case.config
        cfg.write_text(case.text, encoding="utf-8")
        out, info = work / f"{name}-reference", work / f"{name}-reference.json"
        shutil.rmtree(out, ignore_errors=True)
        body = _cli(case.run(cfg, out), out, case.after, report=info)
        scouts[name] = (_child(body, work / f"{name}-reference.log"), out, info)
    references: dict[str, dict[str, bytes]] = {}
    counts: dict[str, int] = {}
    modules: list[str] = []
    for name, (pid, out, info) in scouts.items():
        status = _wait(pid)
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            raise SystemExit(f"the uninterrupted {name} failed ({status}): {_tail(work / f'{name}-reference.log')}")
        got = json.loads(info.read_text(encoding="utf-8"))
        counts[name] = got["points"]
        modules += got["modules"]
        references[name] = CASES[name].snapshot(out)
    warm_started = time.monotonic()
    for module in dict.fromkeys(modules):  # in the order the scouts imported them
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001, S112 - a module that only imports in context: the child imports it
            continue
    warm_seconds = time.monotonic() - warm_started
    # Children share the parent's memory copy-on-write; a collection in a child would write to every object's
    # header and copy the pages, so the parent's objects are moved out of the collector's reach.
    gc.collect()
    gc.freeze()
    clean = _parent_state()

    pending = [Trial(CASES[name], kind, n, work / name / f"{kind}{n}")
               for name in cases for kind in kinds for n in chosen(counts[name], points)]
    for name in cases:
        (work / name).mkdir(exist_ok=True)
    total = len(pending)
    bar = Progress(total, "crash trials", enabled=progress)
    running: dict[int, Trial] = {}
    done: list[Trial] = []
    pending.reverse()

    def start(trial: Trial) -> None:
        cfg = work / trial.case.config
        trial.stage_started = time.monotonic()
        if trial.stage == "fault":
            trial.started = trial.stage_started
            body = _cli(trial.case.run(cfg, trial.out), trial.out, trial.case.after, trial.fault, trial.mark)
        else:
            body = _cli(trial.case.resume(cfg, trial.out), trial.out, trial.case.after)
        running[_child(body, trial.log)] = trial

    def finish(trial: Trial) -> None:
        trial.seconds = time.monotonic() - trial.started
        done.append(trial)
        bar.update(1)
        if trial.problem is None and not keep:
            shutil.rmtree(trial.out, ignore_errors=True)
            for extra in (trial.mark, trial.out.with_name(f"{trial.out.name}.fault.log"),
                          trial.out.with_name(f"{trial.out.name}.resume.log")):
                extra.unlink(missing_ok=True)

    while pending or running:
        while pending and len(running) < jobs:
            start(pending.pop())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if not pid:
            now = time.monotonic()
            for late, trial in running.items():  # a hung child is a failed trial, never a hung sweep
                if now - trial.stage_started > CHILD_TIMEOUT and trial.problem is None:
                    trial.problem = f"the {trial.stage} child ran over {CHILD_TIMEOUT:.0f} s: {_tail(trial.log)}"
                    os.kill(late, signal.SIGKILL)
            time.sleep(0.005)
            continue
        trial = running.pop(pid, None)
        if trial is None:
            continue
        if trial.problem is not None:
            finish(trial)
        elif trial.stage == "fault":
            trial.problem = _check_fault(trial, status)
            if trial.problem:
                finish(trial)
            else:
                trial.stage = "resume"
                start(trial)
        else:
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                trial.problem = f"resume failed ({status}): {_tail(trial.log)}"
            else:
                try:
                    got = trial.case.snapshot(trial.out)
                except (OSError, ValueError, KeyError) as exc:
                    got = {"<unreadable>": str(exc).encode()}
                ref = references[trial.case.name]
                differ = [k for k in sorted(set(got) | set(ref)) if got.get(k) != ref.get(k)]
                trial.problem = (f"after --resume these differ from the uninterrupted run: {differ}" if differ
                                 else _unique_keys(trial.out))
            finish(trial)
    bar.close()
    after = _parent_state()
    failed = [t.to_json() for t in done if t.problem]
    tried = {f"{c}/{k}": sum(1 for t in done if t.case.name == c and t.kind == k) for c in cases for k in kinds}
    rows = {}
    for name in cases:
        path = work / f"{name}-reference" / "results.jsonl"
        rows[name] = len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else None
    return {"points": counts, "selection": points, "seed": SEED, "tried": tried, "trials": len(done),
            "failed": failed, "results_lost": sum(1 for t in done if t.problem),
            "reference_rows": rows, "jobs": jobs, "warm_up_seconds": round(warm_seconds, 2),
            "seconds": round(time.monotonic() - started, 1),
            "parent_clean": clean == after and not after["plugin_manager"] and after["write_points"] == 0,
            "parent_state": after, "trial_log": [t.to_json() for t in done]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="a scratch folder (the trials' results folders go there)")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    parser.add_argument("--kind", action="append", choices=KINDS, help="default: both")
    parser.add_argument("--points", default="all",
                        help="'all', N for a seeded sample of N per case and kind, "
                             "or @N,M for exactly those (-1: the last)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="trials run side by side")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--keep", action="store_true", help="keep the folders of passing trials")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"all|[1-9]\d*|@-?[1-9]\d*(,-?[1-9]\d*)*", args.points):
        parser.error("--points: 'all', a positive number, or @N,M,... (negative: from the end)")
    summary = sweep(args.work, args.case or sorted(CASES), args.kind or list(KINDS), args.points,
                    max(1, args.jobs), keep=args.keep)
    text = json.dumps(summary, indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "trial_log"}, indent=1))
    return 0 if not summary["failed"] and summary["parent_clean"] else 1


if __name__ == "__main__":
    os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for var in [v for v in os.environ if v.startswith("POLYMODAL_")]:
        del os.environ[var]
    sys.exit(main())
