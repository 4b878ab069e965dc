"""The command issue 16 reported hanging, run as a user types it, gives the single-process rows.

``torchrun --nproc-per-node P -m polymodal run [SUITE] --limit N --seed 0 --out OUT``
on real torchrun processes (gloo, CPU), for N in 2, 3, 7, 41 (fewer samples
than ranks, a prime, uneven last batches) with 2 processes and N = 7 with 3
(a rank gets no batch), on a small suite with the axes whose ranks took
different paths (task, zero-shot, retrieval, noise on a classifier and a dual
encoder); and once on the built-in quick-start suite itself at N = 41, the
size of the report. Each single-process run happens in this process and
trains; the torchrun command starts from a copy of its checkpoints, so it
only evaluates (training under DDP is compared in ``test_dist_training``)
and its rows must equal the single-process rows exactly.

``e2e``: every case starts torchrun (imports and rendezvous per command).
The in-process grid over every axis is ``test_dist_equality``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dist_launch import torchrun
from dist_workers import assert_rows_equal, result_rows

pytestmark = pytest.mark.e2e

SUITE = """
name = "dist-command"
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
axes = ["task", "noise"]
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 2, output_dim = 8 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 8, output_dim = 8 } }
[runs.image-text]
axes = ["retrieval", "zero-shot", "noise"]
model.name = "dual-encoder"
model.encoders.image = { name = "cnn", params = { width = 4, depth = 2, output_dim = 8 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 8, output_dim = 8 } }
[axes.task]
batch_size = 4
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
"""


def one_process(suite: str, out: Path, limit: int) -> Path:
    """``polymodal run SUITE --limit N --seed 0 --out OUT`` in this process (trains, then evaluates)."""
    from polymodal.plugins import build_plugin_manager
    from polymodal.runner import RunOptions, run_suite

    if not (out / "manifest.json").is_file():
        run_suite(suite, plugins=build_plugin_manager(), seeds=[0],
                  options=RunOptions(out=out, limit=limit, progress=False))
    return out


def check_command(suite: str, one: Path, out: Path, limit: int, nproc: int, cwd: Path) -> None:
    shutil.copytree(one / "runs", out / "runs")
    args = ["run", *([suite] if suite != "quickstart" else []), "--limit", str(limit), "--seed", "0", "--out", str(out)]
    torchrun(args, cwd=cwd, nproc=nproc, timeout=420)
    label = f"{nproc} processes, {suite}, --limit {limit}"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_size"] == nproc and manifest["failed_runs"] == 0, (label, manifest["runs"])
    assert_rows_equal(one, out, label)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist-command")
    (root / "suite.toml").write_text(SUITE)
    return root


@pytest.mark.parametrize(("nproc", "limit"), [(2, 2), (2, 3), (2, 7), (2, 41), (3, 7)])
def test_the_reported_command_equals_one_process(small: Path, nproc: int, limit: int) -> None:
    suite = str(small / "suite.toml")
    one = one_process(suite, small / f"one-{limit}", limit)
    check_command(suite, one, small / f"p{nproc}-{limit}", limit, nproc, small)


def test_the_quickstart_at_41_samples_equals_one_process(tmp_path: Path) -> None:
    one = one_process("quickstart", tmp_path / "one", 41)
    check_command("quickstart", one, tmp_path / "two", 41, 2, tmp_path)
    axes = {json.loads(k)[1] for k in result_rows(one)}
    assert {"task", "zero-shot", "retrieval", "robustness.noise", "robustness.adversarial"} <= axes, axes

