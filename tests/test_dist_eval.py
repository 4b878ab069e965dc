"""A suite evaluated by 2 torchrun processes (gloo, CPU) gives exactly the single-process rows.

21 samples per split (not divisible by 2, so shards are 11 and 10). The
models are trained once in one process; the 2-process run starts from a copy
of those finished checkpoints (so it also checks that training resumes under
torchrun) and only evaluates, sharded: the comparison isolates evaluation.
Covered: accuracy under corruptions and adversarial attacks (torchmetrics sum
states; whole-batch shards for seeded random starts), Recall@1 both ways of a
dual encoder (embeddings gathered across ranks), and CIDEr-D of a captioner
(torchmetrics ``cat`` states: document frequencies need the whole corpus).
The built-in ``task`` and ``retrieval`` axes join in once they are installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dist_launch import torchrun
from fakedist import write_dist

#: Every test here compares a torchrun (2 processes) evaluation with a single-process one.
pytestmark = pytest.mark.e2e

CAPTION_AXIS = '''
from polymodal import component
caption_cider = component("axes", "caption-cider", "caption_cider_impl:CaptionCider",
                          description="CIDEr-D of generated captions on this rank's shard, corpus-synchronised.")
'''

CAPTION_AXIS_IMPL = '''
import torch

class CaptionCider:
    """What a captioning task axis does: generate per shard, score the gathered corpus."""
    requires = frozenset({"caption"})
    no_grad = True

    def run(self, model, data, ctx):
        from polymodal_plugins.metrics.caption import CIDErD
        ds = data.splits[ctx.split]
        mine = list(ctx.shard(ctx.limited(len(ds)), block=4))
        metric = CIDErD()
        count = 0
        for start in range(0, len(mine), 4):
            samples = [ds[i] for i in mine[start:start + 4]]
            batch = data.collate(samples).to(ctx.device)
            metric.update(model.caption(batch, max_len=8), [[s["text"]] for s in samples])
            count += len(samples)
        yield ctx.row("cider_d", float(metric.compute()), extra={"samples": int(ctx.all_reduce_sum(count))})
'''

SUITE = """
name = "dist-probe"
seeds = [0]
eval_split = "test"
[defaults.data]
dataset = "shapes"
params = { num_samples = 21, image_size = 16, frames = 2 }
batch_size = 8
[defaults.train]
epochs = 1
threads = 1
optimizer = { name = "adamw", lr = 3e-3 }
[runs.classifier]
axes = AXES_CLF
model.name = "fusion-classifier"
model.encoders.image = { name = "cnn", params = { width = 8, depth = 2, output_dim = 16 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 16, output_dim = 16 } }
[runs.image-text]
axes = AXES_EMB
model.name = "dual-encoder"
model.encoders.image = { name = "cnn", params = { width = 8, depth = 2, output_dim = 16 } }
model.encoders.text = { name = "gru", params = { hidden_dim = 16, output_dim = 16 } }
[runs.captioner]
axes = AXES_CAP
model.name = "captioner"
data.fields = ["image", "text"]
[axes.noise]
axis = "robustness.noise"
severities = [2]
batch_size = 4
corruptions = { image = ["gaussian_noise"], text = ["typos"] }
[axes.adversarial]
axis = "robustness.adversarial"
attacks = ["pgd"]
epsilons = [0.03]
l2_epsilons = []
steps = 2
batch_size = 4
[axes.caption]
axis = "caption-cider"
EXTRA_AXES
"""


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    return env


def _rows(out: Path) -> dict[str, float | None]:
    found = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        key = json.dumps([r["run"], r["axis"], r["metric"], r["conditions"]], sort_keys=True)
        assert key not in found, f"duplicate row {key}"
        found[key] = r["value"]
    return found


@pytest.fixture(scope="module")
def outs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from polymodal.plugins import build_plugin_manager

    root = tmp_path_factory.mktemp("disteval")
    site = write_dist(root / "site", "pm-caption-cider",
                      {"caption_cider_plugin": CAPTION_AXIS, "caption_cider_impl": CAPTION_AXIS_IMPL},
                      {"axis.caption-cider": "caption_cider_plugin:caption_cider"})
    axes = build_plugin_manager().registry("axes")
    extra, clf, emb, cap = "", ["noise", "adversarial"], ["noise"], ["caption"]
    if "task" in axes and "retrieval" in axes:  # the built-in axes, once merged
        extra = '[axes.task]\n[axes.retrieval]\nks = [1, 5]\n'
        clf, emb, cap = clf + ["task"], emb + ["retrieval"], cap + ["task"]
    suite = root / "suite.toml"
    suite.write_text(SUITE.replace("AXES_CLF", json.dumps(clf)).replace("AXES_EMB", json.dumps(emb))
                     .replace("AXES_CAP", json.dumps(cap)).replace("EXTRA_AXES", extra))
    one, two = root / "one", root / "two"
    proc = subprocess.run([sys.executable, "-m", "polymodal", "run", str(suite), "--out", str(one), "--quiet",
                           "--no-report"], env=_env(site), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    shutil.copytree(one / "runs", two / "runs")
    old = dict(os.environ)
    os.environ.update(_env(site))
    try:
        torchrun(["run", str(suite), "--out", str(two), "--quiet", "--no-report"], cwd=root)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return one, two


def test_every_row_equals_the_single_process_run(outs: tuple[Path, Path]) -> None:
    one, two = (_rows(o) for o in outs)
    assert one.keys() == two.keys()
    for key, value in one.items():
        other = two[key]
        if value is None:
            assert other is None, key
        else:
            assert other == pytest.approx(value, rel=1e-5, abs=1e-6), key
    axes_seen = {json.loads(k)[1] for k in one}
    assert {"robustness.noise", "robustness.adversarial", "caption-cider", "train"} <= axes_seen
    metrics = {json.loads(k)[2] for k in one}
    assert {"recall@1", "robust_accuracy", "cider_d", "accuracy"} <= metrics


def test_shards_cover_every_sample_once(outs: tuple[Path, Path]) -> None:
    for line in (outs[1] / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["metric"] == "cider_d":
            assert r["extra"]["samples"] == 21
        if r["axis"] == "robustness.adversarial" and "samples" in r["extra"]:
            assert r["extra"]["samples"] == 21


def test_only_rank_zero_wrote(outs: tuple[Path, Path]) -> None:
    manifest = json.loads((outs[1] / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    assert all(r["status"] == "complete" for r in manifest["runs"])
    lines = (outs[1] / "progress.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines))
