"""What a cluster user meets when things go wrong under torchrun (e2e: real torchrun subprocesses).

- A rank that dies in the middle of an axis fails the job (non-zero exit, no
  hang); ``--resume`` then finishes it, and the rows equal an uninterrupted
  single-process run: none lost, none duplicated.
- A rendezvous that cannot complete ends with one line naming the rank and
  the address, after the collective timeout, not a Python traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dist_launch import free_port, torchrun, torchrun_env
from dist_workers import result_rows
from fakedist import write_dist

pytestmark = pytest.mark.e2e

DIE_ONCE = '''
from polymodal import component
die_once = component("axes", "die-once", "die_once_impl:DieOnce",
                     description="Test axis: rank 1 exits mid-axis the first time it runs.")
'''

DIE_ONCE_IMPL = '''
import json
import os
from pathlib import Path

class DieOnce:
    requires = frozenset()

    def run(self, model, data, ctx):
        total = ctx.all_reduce_sum(float(len(ctx.shard(ctx.limited(len(data.splits[ctx.split]))))))
        yield ctx.row("samples", total)
        marker = Path(os.environ["DIE_ONCE_MARKER"])
        if ctx.rank == 1 and not marker.exists():
            marker.write_text("died")
            os._exit(3)  # a node lost mid-axis: no cleanup, no exception
        yield ctx.row("after", ctx.all_reduce_max(1.0))
'''

SUITE = """
name = "dist-failures"
seeds = [0]
eval_split = "test"
[defaults.data]
dataset = "shapes"
params = { num_samples = 12, image_size = 16, frames = 2 }
batch_size = 4
[defaults.train]
epochs = 1
threads = 1
[runs.first]
axes = ["task", "die", "noise"]
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 2, output_dim = 8 } }
[runs.second]
axes = ["task"]
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 2, output_dim = 8 } }
[axes.task]
[axes.die]
axis = "die-once"
[axes.noise]
axis = "robustness.noise"
severities = [2]
batch_size = 4
corruptions = { image = ["gaussian_noise"] }
"""


def test_a_rank_dying_fails_the_job_and_resume_finishes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = write_dist(tmp_path / "site", "pm-die-once", {"die_once_plugin": DIE_ONCE, "die_once_impl": DIE_ONCE_IMPL},
                      {"axis.die-once": "die_once_plugin:die_once"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="",
               DIE_ONCE_MARKER=str(tmp_path / "died"), POLYMODAL_COLLECTIVE_TIMEOUT="60")
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    one, two = tmp_path / "one", tmp_path / "two"
    (tmp_path / "died").write_text("single process: never die")
    proc = subprocess.run([sys.executable, "-m", "polymodal", "run", str(suite), "--out", str(one), "-q",
                           "--no-report"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (tmp_path / "died").unlink()
    shutil.copytree(one / "runs", two / "runs")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--nnodes=1",
           f"--master-port={free_port()}", "--master-addr=127.0.0.1", "-m", "polymodal", "run", str(suite),
           "--out", str(two), "-q", "--no-report"]
    crashed = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert crashed.returncode != 0, "the job must fail when a rank dies"
    assert (tmp_path / "died").exists()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    torchrun(["run", str(suite), "--out", str(two), "-q", "--no-report", "--resume"], cwd=tmp_path, timeout=600)
    # The failed attempt's "runner/error" rows stay as its record; every measurement is there exactly once.
    measured = {k: v for k, v in result_rows(two).items() if json.loads(k)[1] != "runner"}
    assert measured == result_rows(one)
    statuses = {r["label"]: r["status"] for r in json.loads((two / "manifest.json").read_text())["runs"]}
    assert statuses == {"first": "complete", "second": "complete"}


def test_a_rendezvous_that_cannot_complete_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    port = free_port()  # nobody listens there: rank 1 never reaches rank 0
    env.update(torchrun_env(1, 2, port), POLYMODAL_COLLECTIVE_TIMEOUT="3", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-m", "polymodal", "run", "quickstart", "--out", str(tmp_path / "o"),
                           "-q"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("polymodal: error: torchrun rendezvous failed (rank 1 of 2"), last
    assert f"MASTER_PORT={port}" in last, last
    assert "Traceback" not in proc.stderr
