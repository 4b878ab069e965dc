"""polymodal-depth: a third-party modality that the built-in axes evaluate from its traits alone."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from polymodal import DataError, get_plugins
from polymodal.traits import traits_of


def test_depth_is_registered_with_its_traits():
    plugins = get_plugins()
    modality = plugins.build("modalities", "depth")
    traits = traits_of(modality)
    assert traits.continuous and traits.perturb_input and traits.value_range == (0.0, 1.0)
    assert traits.raw_format == "depth" and traits.space_dims == (1, 2)
    assert {"depth.sensor_noise", "depth.holes"} <= set(plugins.registry("corruptions").names())
    assert "estimate-range" in plugins.get("models", "range-classifier").capabilities


def test_npy_and_16bit_png_load_through_the_builtin_manifest_dataset(tmp_path):
    """Files written by the generator read back through the registry (the manifest names only 'depth')."""
    from polymodal_depth.dataset import DepthShapes

    source = DepthShapes("test", num_samples=6, size=16)
    rows = source.write_files(tmp_path)
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    ds = get_plugins().build("datasets", "manifest", root=tmp_path, fields={"depth": "depth", "text": "text"},
                             targets=["shape", "distance"])
    assert {p.suffix for p in tmp_path.iterdir()} >= {".npy", ".png"}
    for i in range(len(ds)):
        # PNG stores millimetres: equal to within half a millimetre; .npy exactly.
        np.testing.assert_allclose(ds[i]["depth"], source[i]["depth"], atol=5e-4 if i % 2 == 0 else 0)
    modality = get_plugins().build("modalities", "depth", size=16)
    x = modality.preprocess(ds[0]["depth"])
    assert x.shape == (1, 16, 16) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_bad_depth_files_name_the_file(tmp_path):
    modality = get_plugins().build("modalities", "depth")
    (tmp_path / "rgb.png").write_bytes(b"")
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png: a depth PNG must be 16-bit"):
        modality.load("rgb.png", tmp_path)
    np.save(tmp_path / "neg.npy", -np.ones((4, 4), np.float32))
    with pytest.raises(DataError, match=r"neg\.npy: depth must be finite and >= 0"):
        modality.load("neg.npy", tmp_path)
    with pytest.raises(DataError, match=r"\.npy \(metres\) or 16-bit \.png"):
        modality.load("x.tiff", tmp_path)


@pytest.mark.parametrize("name", ["sensor_noise", "holes"])
def test_depth_corruptions_are_found_by_raw_format_and_grow_with_severity(name):
    from polymodal import get_plugins

    from polymodal_depth.dataset import DepthShapes

    plugins = get_plugins()
    # found through the public registry by the raw format they accept, as the noise axis finds them
    assert {s.name for s in plugins.list("corruptions") if "depth" in s.tags} == {"depth.sensor_noise", "depth.holes"}
    depth = DepthShapes("test", num_samples=1, size=32)[0]["depth"]
    fn = plugins.get("corruptions", f"depth.{name}").load()
    damage = [float(np.abs(fn(depth, s, np.random.default_rng(0)) - depth).mean()) for s in (1, 3, 5)]
    again = fn(depth, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(again, fn(depth, 3, np.random.default_rng(0)))
    assert damage[0] < damage[1] < damage[2]


@pytest.mark.parametrize("name", ["sensor_noise", "holes"])
def test_depth_corruptions_pass_the_corruption_contract(name):
    from polymodal.testing import check_corruption

    from polymodal_depth.dataset import DepthShapes

    # on a real depth map (with its zero-depth holes) as well as the checker's synthetic one
    check_corruption(f"depth.{name}", DepthShapes("test", num_samples=1, size=16)[0]["depth"])
    check_corruption(f"depth.{name}")


def test_depth_suite_passes_the_suite_contract():
    from polymodal.testing import check_suite

    assert "depth" in str(check_suite("depth-quickstart").source)


@pytest.mark.e2e  # trains a model and runs five axes: minutes on 2 shared cores
def test_suite_runs_end_to_end_with_every_axis_for_depth(tmp_path):
    """Task, noise (depth corruptions), adversarial, importance and range rows, and report sections."""

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    code = main(["run", "depth-quickstart", "--out", str(out), "--limit", "16", "-q",
                 "--set", "defaults.train.epochs=1", "--set", "defaults.data.params.num_samples=32",
                 "--set", "axes.noise.severities=[1,5]", "--set", "axes.adversarial.attacks=[\"fgsm\"]"])
    assert code == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    assert not [r for r in rows if r["metric"] == "error"], [r["extra"].get("error") for r in rows if r["metric"] == "error"]

    def having(axis, **conds):
        return [r for r in rows if r["axis"] == axis and all(r["conditions"].get(k) == v for k, v in conds.items())]

    assert having("task", task="classification")
    assert {r["conditions"]["corruption"] for r in having("robustness.noise", modality="depth")} >= {
        "sensor_noise", "holes", "missing"}
    assert [r for r in having("robustness.adversarial", modality="depth", attack="fgsm") if r["value"] is not None]
    assert having("interpretability.importance", modality="depth", method="shapley")
    assert having("interpretability.importance", modality="depth", method="occlusion")
    assert {r["metric"] for r in having("range-estimation")} == {"mae_m", "rmse_m", "within_10pct"}
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    for report in (html, md):
        assert "range-estimation" in report and "depth" in report


def main(args):
    """``polymodal ARGS`` as a user runs it (the CLI is the public entry point), returning its exit code."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "polymodal", *args],
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}).returncode
