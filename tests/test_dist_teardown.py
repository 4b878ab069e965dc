"""Under torchrun the gloo process group is freed when the job ends, not at interpreter exit (issue 16).

A group still alive at exit let a gloo worker thread, finishing our last
collective, take the GIL while Python was finalising: ``terminate called
without an active exception`` (SIGABRT) in about 1 of 10 two-process jobs.
PyTorch keeps the group past ``destroy_process_group`` when ``torch._dynamo``
is imported after the group exists, or while a DDP wrapper lives;
:func:`polymodal.distributed.distributed_context` avoids both. The abort is a
race, so this checks its precondition, which is deterministic: after
``destroy_process_group`` each rank is down to its main thread (the group's
gloo threads were joined), with the normal interpreter exit (not
``polymodal.cli.process_exit``'s ``os._exit``), in both commands that build
the group: ``train`` (DDP) and ``run`` (torchmetrics).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from dist_launch import torchrun

CONFIG = """
name = "teardown"
[data]
dataset = "shapes"
params = { num_samples = 12, image_size = 16, frames = 2 }
batch_size = 4
[model]
name = "fusion-classifier"
encoders.image = { name = "cnn", params = { width = 4, depth = 1, output_dim = 8 } }
[train]
epochs = 1
max_steps = 2
threads = 1
evaluate = false
"""

SUITE = """
name = "teardown"
seeds = [0]
[defaults.data]
dataset = "shapes"
params = { num_samples = 12, image_size = 16, frames = 2 }
batch_size = 4
[defaults.train]
max_steps = 2
[runs.classifier]
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 1, output_dim = 8 } }
[axes.task]
axis = "task"
"""

#: polymodal's CLI with a probe on destroy_process_group, leaving through the normal interpreter exit.
PROBE = """
import os, sys
import torch.distributed as dist
_destroy = dist.destroy_process_group
def destroy(*args, **kwargs):
    _destroy(*args, **kwargs)
    sys.stdout.write(f"rank {os.environ['RANK']} threads after destroy: {len(os.listdir('/proc/self/task'))}\\n")
    sys.stdout.flush()
dist.destroy_process_group = destroy
from polymodal.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["train", "run"])
def test_group_threads_joined_at_destroy(tmp_path: Path, command: str) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    if command == "train":
        (tmp_path / "exp.toml").write_text(CONFIG)
        args = ["train", "exp.toml", "--out", "out", "--quiet"]
    else:
        (tmp_path / "suite.toml").write_text(SUITE)
        args = ["run", "suite.toml", "--out", "out", "-q", "--no-report"]
    proc = torchrun(args, tmp_path, entry=["--no-python", sys.executable, str(probe)])
    # both ranks write to the same pipe, so their lines may interleave: read the reports, not the lines
    counts = sorted(re.findall(r"rank (\d+) threads after destroy: (\d+)", proc.stdout))
    assert counts == [("0", "1"), ("1", "1")], \
        (proc.stdout, proc.stderr[-3000:])
