"""Contrib plugins in a real suite: ``fusion = "tensor"`` and the ``minilm`` encoder through ``polymodal run``.

Issue 9's "done" bar: a suite naming a third-party fusion (polymodal-fusion-zoo)
and a third-party pretrained encoder (polymodal-minilm) runs end to end with
no core change, and its results are real rows in the store. Also checks that
the suites the contrib package ships validate against the current suite
schema (they were written before it existed, so this guards against drift).
Sizes are tiny (1 epoch, ``--limit``) so the whole file takes seconds of
training; the MiniLM load dominates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal import build_plugin_manager

SUITE = """
name = "contrib-tiny"
seeds = [0]
eval_split = "test"

[defaults.data]
dataset = "shapes"
params = { num_samples = 24, image_size = 16, frames = 2 }
batch_size = 12

[defaults.train]
epochs = 1

[runs.tensor]
axes = ["task"]
model.name = "fusion-classifier"
model.fusion = "tensor"
model.fusion_params = { modality_dim = 4, output_dim = 16 }
model.target = "combo"
model.encoders.text = { name = "minilm", frozen = true, params = { max_length = 16 } }
model.encoders.image = { name = "cnn", params = { width = 8, depth = 2, output_dim = 16 } }

[runs.minilm]
axes = ["zs-unseen", "zs-reordered"]
model.name = "dual-encoder"
model.params.embed_dim = 16
model.encoders.text = { name = "minilm", frozen = true, params = { max_length = 16 } }
model.encoders.image = { name = "cnn", params = { width = 8, depth = 2, output_dim = 16 } }

[axes.task]

[axes.zs-unseen]
axis = "zero-shot"
split = "zeroshot"
target = "combo"
templates = ["a photo of one {}", "an image showing a {}"]

[axes.zs-reordered]
axis = "zero-shot"
split = "zeroshot"
target = "combo"
templates = ["one {shape}, painted {color}"]
"""


def _require_contrib() -> None:
    plugins = build_plugin_manager(entry_points=True)
    names = {(kind, spec.name) for kind in ("fusions", "encoders") for spec in plugins.list(kind)}
    missing = [f"{kind[:-1]} {name!r}" for kind, name in (("fusions", "tensor"), ("encoders", "minilm"))
               if (kind, name) not in names]
    if missing:  # a failure, not a skip: the README set-up installs them and CI must exercise them
        pytest.fail(f"contrib packages not installed ({', '.join(missing)}); "
                    "pip install -e contrib/polymodal-fusion-zoo -e contrib/polymodal-minilm")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    _require_contrib()
    from polymodal.cli import main
    from polymodal.plugins import get_plugins

    root = tmp_path_factory.mktemp("contrib-suite")
    suite = root / "contrib-tiny.toml"
    suite.write_text(SUITE)
    out = root / "out"
    try:
        code = main(["run", str(suite), "--out", str(out), "--limit", "12", "--no-report", "-q", "--fail-fast"])
    finally:
        get_plugins(refresh=True)  # main() installed its own process-wide manager; rebuild the default
    assert code == 0
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


def test_tensor_fusion_run_has_task_accuracy_rows(results):
    rows = [r for r in results if r["axis"] == "task" and r["metric"] == "accuracy"]
    assert rows, "no task accuracy row"
    assert all("axis_label" not in r["conditions"] for r in rows)  # only added when an axis is used twice
    assert all(r["run"].startswith("tensor") for r in rows)
    assert all(r["conditions"]["fusion"] == "tensor" for r in rows)
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)


def test_minilm_dual_encoder_run_has_zero_shot_rows(results):
    rows = [r for r in results if r["axis"] == "zero-shot" and r["run"].startswith("minilm")]
    accuracy = [r for r in rows if r["metric"] == "accuracy"]
    # Two tables of one axis: each keeps its own rows, told apart by axis_label.
    assert {(r["conditions"]["axis_label"], r["conditions"]["candidates"]) for r in accuracy} == {
        (label, cand) for label in ("zs-unseen", "zs-reordered") for cand in ("all", "split")}
    templates = {r["conditions"]["axis_label"]: r["extra"]["templates"] for r in accuracy}
    assert templates == {"zs-unseen": ["a photo of one {}", "an image showing a {}"],
                         "zs-reordered": ["one {shape}, painted {color}"]}
    for row in accuracy:
        assert 0.0 <= row["value"] <= 1.0
        assert row["conditions"]["split"] == "zeroshot"
    # "all" ranks the 30 colour x shape classes; "split" only the held-out ones
    # that occur in the (limited) split: at most the 5 that shapes holds out.
    classes = {r["conditions"]["candidates"]: r["extra"]["classes"] for r in accuracy}
    assert classes["all"] == 30 and 1 <= classes["split"] <= 5


@pytest.mark.parametrize("suite_name", ["minilm-zero-shot", "minilm-fusion-ablation"])
def test_shipped_contrib_suites_validate(suite_name, tmp_path):
    """The runner's own validation (names, capabilities, parameters) accepts the shipped suites."""
    _require_contrib()
    from polymodal.runner import RunOptions, Runner
    from polymodal.suite import expand_suite, load_suite_dict, resolve_suite_path

    plugins = build_plugin_manager(entry_points=True)
    path = resolve_suite_path(suite_name, plugins)
    suite = expand_suite(load_suite_dict(path), str(path))
    runner = Runner(suite, plugins, RunOptions(out=tmp_path))
    runner.validate()  # raises ConfigError listing every problem
    assert len(runner.experiments) == len(suite.runs) >= 2
