"""Crash testing by construction: kill (or fill the disk) at the N-th write of a run, resume, compare bytes.

Every durable write and fsync of the platform is a numbered write point
(:mod:`polymodal.faults`). ``tests/crash_sweep.py`` runs the uninterrupted
``polymodal run`` (a suite that trains with mid-run checkpoints and has three
multi-unit axes) and ``polymodal train`` once, then for each point N and each
fault kind forks a child from one warm process that dies by SIGKILL (or
meets a full disk) at write N -- the hook reports where, and the driver
checks it is N -- then a child that resumes, and requires results.jsonl,
artifacts.jsonl, every artifact PNG and the reports (timestamps and durations aside), or
the weights, training state and metrics log, to be byte-identical to the
uninterrupted run. The ``e2e`` test tries every point (``POLYMODAL_CRASH_POINTS=N``
makes it a seeded sample of N per case and kind); the fast lane tries the
first write and the last few of a run.

The trials' folders go to ``/dev/shm`` when it is a tmpfs with room: a
killed process loses nothing the page cache holds, so a kill or ENOSPC is
the same test there, without ~60 fsyncs of a real disk per trial.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
SWEEP = HERE / "crash_sweep.py"


@pytest.fixture()
def scratch(tmp_path: Path) -> Iterator[Path]:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 512 * 2**20:
        folder = Path(tempfile.mkdtemp(prefix="polymodal-crash-", dir=shm))
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path


def sweep(work: Path, *args: str) -> dict[str, Any]:
    """Run the driver in a fresh interpreter (its parent must start clean); return its JSON summary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    summary = work / "summary.json"
    proc = subprocess.run([sys.executable, str(SWEEP), str(work / "trials"), "--json", str(summary), *args],
                          capture_output=True, text=True, timeout=1800, env=env)
    assert summary.exists(), f"the sweep did not finish ({proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(summary.read_text())
    print(json.dumps({k: v for k, v in result.items() if k != "trial_log"}, indent=1))  # shown in CI logs
    failed = "\n".join(f"{t['case']} {t['fault']} ({t['at']}): {t['problem']}" for t in result["failed"])
    assert not failed, f"{len(result['failed'])} of {result['trials']} trials lost or changed results:\n{failed}"
    assert result["parent_clean"], f"the sweep's parent picked up state its children inherit: {result['parent_state']}"
    assert proc.returncode == 0, proc.stderr[-2000:]
    return result


def test_a_fault_at_the_first_and_the_last_writes_then_resume_equals_the_uninterrupted_run(scratch: Path) -> None:
    """The fast lane's sample: the first write, the end of the run (last commit record, the manifest marking the
    run complete: the full sweep found a kill there left the run "pending" after --resume), and the last write."""
    result = sweep(scratch, "--case", "run", "--points", "@1,-5,-4,-1")
    points = result["points"]["run"]
    assert points > 50, points  # training with checkpoints, three axes' unit commits, the manifest
    assert result["tried"] == {"run/kill": 4, "run/enospc": 4}
    at = {t["fault"]: t["at"] for t in result["trial_log"]}
    assert at["kill@1"] == "write manifest.json", at
    assert at[f"kill@{points - 4}"] == "fsync progress.jsonl", at  # the run's last commit record
    assert at[f"enospc@{points - 3}"] == "write manifest.json", at  # the manifest saying the run is complete
    assert result["reference_rows"]["run"] > 20 and result["results_lost"] == 0


@pytest.mark.e2e
def test_every_write_point_of_run_and_train_then_resume_equals_the_uninterrupted_run(scratch: Path) -> None:
    """Issue 15: SIGKILL and ENOSPC at every write point of `run` and `train`, then `--resume`: nothing lost."""
    wanted = os.environ.get("POLYMODAL_CRASH_POINTS", "all")
    result = sweep(scratch, "--points", wanted)
    run, train = result["points"]["run"], result["points"]["train"]
    assert run > 50 and train > 20, result["points"]
    if wanted == "all":
        assert result["tried"] == {"run/kill": run, "run/enospc": run, "train/kill": train, "train/enospc": train}
    whats = {t["at"].split()[-1] for t in result["trial_log"]}
    # the faults landed in result rows, unit commits, artifacts, checkpoint files and the checkpoint switch
    assert {"results.jsonl", "progress.jsonl", "artifacts.jsonl", "model.safetensors", "checkpoint.json",
            "checkpoint"} <= whats or wanted != "all", sorted(whats)


def test_the_sweep_picks_every_point_a_seeded_sample_or_exactly_the_named_ones() -> None:
    from crash_sweep import chosen

    assert chosen(108, "all") == list(range(1, 109)) and chosen(5, "9") == [1, 2, 3, 4, 5]
    sample = chosen(108, "12")
    assert len(sample) == 12 and sample[0] == 1 and sample[-1] == 108 and sample == chosen(108, "12")  # seeded
    assert chosen(108, "@1,-5,-4,-1") == [1, 104, 105, 108] and chosen(10, "@3,99,-99") == [3]


def test_the_fault_hook_obeys_the_environment_and_reports_where_it_fired(tmp_path: Path) -> None:
    """`POLYMODAL_FAULT` (what a user sets for one real process) kills, or fills the disk, at exactly point N."""
    code = ("import sys\nfrom polymodal.faults import write_point, count, fired\n"
            "try:\n    [write_point(f'w{i}') for i in range(1, 6)]\n"
            "except OSError as exc:\n    print(exc.errno, count(), fired()); sys.exit(3)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    mark = tmp_path / "mark"
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, "POLYMODAL_FAULT": "kill@4", "POLYMODAL_FAULT_MARK": str(mark)})
    assert killed.returncode == -9 and mark.read_text() == "4 w4", (killed.returncode, killed.stderr)
    full = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "POLYMODAL_FAULT": "enospc@2"})
    assert full.returncode == 3 and full.stdout.split() == ["28", "2", "(2,", "'w2')"], full.stdout + full.stderr
    count = tmp_path / "count"
    counted = subprocess.run([sys.executable, "-c", code], env={**env, "POLYMODAL_FAULT_COUNT": str(count)})
    assert counted.returncode == 0 and count.read_text() == "5"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "POLYMODAL_FAULT": "kill@0"})
    assert bad.returncode == 1 and "expected kill@N or enospc@N" in bad.stderr


def test_arm_restarts_the_count_and_overrides_the_environment(tmp_path: Path, monkeypatch) -> None:
    from polymodal import faults

    for name in ("_count", "_spec", "_mark", "_fired", "_parsed"):  # this pytest process's hook, as it was
        monkeypatch.setattr(faults, name, getattr(faults, name))
    monkeypatch.setenv("POLYMODAL_FAULT", "kill@1")  # arm() wins over it: this process must survive
    mark = tmp_path / "mark"
    faults.arm("enospc@2", mark=mark)
    faults.write_point("first")
    with pytest.raises(OSError, match="No space left on device") as exc:
        faults.write_point("second")
    assert exc.value.errno == 28 and faults.fired() == (2, "second") and mark.read_text() == "2 second"
    faults.arm(None)
    faults.write_point("third")
    assert faults.count() == 1 and faults.fired() is None
    with pytest.raises(ValueError, match="expected kill@N or enospc@N"):
        faults.arm("kill@-1")


SUITE = """
name = "busy"
seeds = [0]
limit = 8
[defaults.data]
dataset = "shapes"
params = { num_samples = 16, image_size = 16 }
batch_size = 8
[defaults.train]
epochs = 1
threads = 1
[runs.clf]
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 1, output_dim = 8 } }
"""


def test_a_second_writer_is_refused_while_readers_work(tmp_path: Path, capsys, monkeypatch) -> None:
    """Issue 15 scenario 5: a second `run --resume` on a folder being written is refused, naming the holder.

    The second writer is ``polymodal.cli.main`` in this process (torch is imported already; a fresh
    interpreter cost ~7 s); the holder is another process, as it would be.
    """
    from polymodal import plugins
    from polymodal.cli import main

    monkeypatch.setattr(plugins, "_default", plugins._default)  # main() replaces the process-wide manager
    suite, out = tmp_path / "s.toml", tmp_path / "busy"
    suite.write_text(SUITE)
    hold = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom polymodal.writer_lock import writer_lock\n"
                             "with writer_lock(sys.argv[1], 'polymodal run'):\n    print('locked', flush=True)\n"
                             "    time.sleep(120)\n", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout is not None and hold.stdout.readline().strip() == "locked"
        capsys.readouterr()
        rc = main(["run", str(suite), "--out", str(out), "-q", "--resume"])
        err = capsys.readouterr().err
        assert rc == 2 and f"pid {hold.pid} on host" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not (out / "results.jsonl").exists()
        main(["report", str(out), "-f", "json"])  # a reader is not refused: it reads, and finds nothing yet
        err = capsys.readouterr().err
        assert "has no results.jsonl" in err and "another writer" not in err, err
    finally:
        hold.kill()
        hold.wait()
