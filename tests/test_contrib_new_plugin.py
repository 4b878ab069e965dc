"""``polymodal new-plugin``: every kind's scaffold installs and passes its own tests.

The scaffolds are installed into a throwaway virtual environment layered on
the current one (a ``.pth`` that adds this environment's site-packages), so
the test neither pays for a full environment nor leaves packages behind in
the shared one. All packages (one per component kind, one with several
component kinds, and one with every application kind: corruption, reporter,
report section, suite, command, trainer) share one install and one pytest
run: torch is imported once. The installed kinds then run together inside
``polymodal run --limit 8``, and the application kinds through the CLI.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from polymodal import ConfigError, UnknownNameError
from polymodal.cli import main
from polymodal.registry import KINDS, kind_of
from polymodal_plugins.commands.new_plugin import SCAFFOLD_KINDS, names_for, render
from test_public_api import APPLICATION_KINDS, TIERS, polymodal_imports


def _can_build_editable_without_isolation() -> bool:
    """PEP 660 editable builds need setuptools >= 70.1 (or the ``wheel`` package) in this env."""
    try:
        major, minor = (int(x) for x in importlib.metadata.version("setuptools").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return False
    if (major, minor) >= (70, 1):
        return True
    try:
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _layered_venv(path: Path) -> Path:
    """A venv without pip whose site-packages chain-load this interpreter's (editable finders included)."""
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    target = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                          text=True).strip())
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    # addsitedir (unlike a bare path line) also runs the parent's .pth files,
    # which is how editable installs of polymodal itself become visible.
    (target / "zz_parent_env.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
    return python


MULTI = ("modality", "fusion", "metric", "axis", "model")
#: Kinds scaffolded together in one package (``demo-app``), which keeps the install and test run short.
APP = ("corruption", "reporter", "report-section", "suite", "command", "trainer")
SINGLE = tuple(kind for kind in SCAFFOLD_KINDS if kind not in APP)

SUITE = """
name = "scaffolds"
trainer = "demo-app"
[defaults.data]
dataset = "shapes"
params = { num_samples = 32, image_size = 16 }
batch_size = 8
[defaults.train]
epochs = 1
threads = 1
strategy = "demo-strategy"
strategy_params = { p = 0.5 }
[runs.mine]
model.name = "demo-model"
model.fusion = "demo-fusion"
model.encoders.image = { name = "cnn", params = { width = 8, depth = 2, output_dim = 16 } }
model.encoders.text = { name = "gru" }
[axes.mine]
axis = "demo-axis"
[axes.multi]
axis = "demo-multi"
[axes.adv]
axis = "robustness.adversarial"
attacks = ["demo-attack"]
epsilons = [0.03]
targets = [["image"]]
[axes.noise]
axis = "robustness.noise"
severities = [1, 5]
fields = ["image"]
corruptions = { image = ["demo-app"] }
"""


@pytest.mark.e2e
def test_scaffolds_for_every_kind_install_pass_their_tests_and_run_in_a_suite(tmp_path):
    packages = tmp_path / "pkgs"
    for kind in SINGLE:
        assert main(["new-plugin", f"demo-{kind}", "--kind", kind, "--dir", str(packages)]) == 0
    for name, kinds in (("demo-multi", MULTI), ("demo-app", APP)):
        assert main(["new-plugin", name, *(arg for kind in kinds for arg in ("--kind", kind)),
                     "--dir", str(packages)]) == 0
    dists = [f"polymodal-demo-{kind}" for kind in SINGLE] + ["polymodal-demo-multi", "polymodal-demo-app"]
    python = _layered_venv(tmp_path / "venv")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    flags = ["--no-deps", "--no-build-isolation"] if _can_build_editable_without_isolation() else ["--no-deps"]
    editable = [arg for dist in dists for arg in ("-e", str(packages / dist))]
    install = subprocess.run([python, "-m", "pip", "install", "-q", *flags, *editable],
                             capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr

    listed = subprocess.run([python, "-m", "polymodal", "plugins", "--json"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    records = {r["name"]: r for r in json.loads(listed.stdout)["plugins"]}
    expected = {f"demo-{kind}": f"polymodal-demo-{kind}" for kind in SINGLE}
    expected.update({f"demo-multi.{kind}": "polymodal-demo-multi" for kind in MULTI})  # one entry point per kind
    expected.update({f"demo-app.{kind.replace('-', '_')}": "polymodal-demo-app" for kind in APP})
    for name, dist in expected.items():  # discovered through its entry point, and loaded
        record = records[name]
        assert (record["status"], record["distribution"]) == ("loaded", dist), record

    tests = [str(packages / dist / "tests") for dist in dists]
    run = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                          "--rootdir", str(packages), *tests],
                         capture_output=True, text=True, env=env, timeout=600, cwd=packages)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
    # Every kind contributes real tests (none silently skipped or uncollected).
    passed = int(run.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= 3 * (len(SCAFFOLD_KINDS) + len(MULTI))

    # The installed scaffolds work together inside `polymodal run --limit 8`: model, fusion, strategy, both
    # axes, the attack, and the trainer and corruption of demo-app.
    (tmp_path / "suite.toml").write_text(SUITE)
    out = tmp_path / "out"
    suite = subprocess.run([python, "-m", "polymodal", "run", str(tmp_path / "suite.toml"), "--out", str(out),
                            "--limit", "8", "-q", "--no-report"], capture_output=True, text=True, env=env,
                           timeout=600, cwd=tmp_path)
    assert suite.returncode == 0, suite.stderr[-4000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for axis in ("demo-axis", "demo-multi"):
        got = [r for r in rows if r["axis"] == axis]
        assert len(got) == 1 and got[0]["metric"] == "accuracy" and 0 <= got[0]["value"] <= 1, got
    adversarial = [r for r in rows if r["axis"] == "robustness.adversarial"]
    attacked = [r for r in adversarial if r["conditions"].get("attack") == "demo-attack"
                and r["metric"] == "robust_accuracy"]
    assert attacked and all(0 <= r["value"] <= 1 for r in attacked), adversarial
    # The strategy trained the run: its own figure is among the training rows.
    assert any(r["axis"] == "train" and r["metric"] == "dropped" for r in rows), rows
    # The trainer ran it (its own figures), and the noise axis applied the corruption at both severities.
    assert any(r["axis"] == "train" and r["metric"] == "parameters" and r["value"] > 0 for r in rows), rows
    corrupted = {r["conditions"].get("severity") for r in rows
                 if r["axis"] == "robustness.noise" and r["conditions"].get("corruption") == "demo-app"}
    assert corrupted - {None} == {1, 5}, rows  # None: rows summarising all severities
    _application_kinds_work_from_the_cli(python, env, out, tmp_path, rows)


def _polymodal(python: Path, env: dict[str, str], *argv: str, cwd: Path) -> str:
    done = subprocess.run([python, "-m", "polymodal", *argv], capture_output=True, text=True, env=env,
                          timeout=600, cwd=cwd)
    assert done.returncode == 0, f"polymodal {' '.join(argv)}: " + done.stderr[-4000:]
    return done.stdout


def _application_kinds_work_from_the_cli(python: Path, env: dict[str, str], out: Path, cwd: Path,
                                         rows: list[dict]) -> None:
    """demo-app's reporter, report section, command and suite, each through `polymodal` as a user runs them."""
    _polymodal(python, env, "report", str(out), "-f", "demo-app", cwd=cwd)
    header = (out / "report.demo-app").read_text().splitlines()[0].split(",")
    assert header[0] == "run" and any(k.startswith("demo-axis/") for k in header), header
    with (out / "artifacts.jsonl").open("a") as f:  # what an axis's ctx.artifact("demo_app", ...) records
        f.write(json.dumps({"run": "mine", "axis": "demo-axis", "kind": "demo_app", "data": {"note": "seen"}}) + "\n")
    _polymodal(python, env, "report", str(out), "-f", "markdown", cwd=cwd)
    assert "## DemoApp examples" in (out / "report.md").read_text()
    counted = json.loads(_polymodal(python, env, "demo-app", str(out), "--json", cwd=cwd))
    assert counted["rows"] == sum(r["metric"] != "error" for r in rows) and counted["failed_runs"] == []
    _polymodal(python, env, "run", "demo-app", "--out", str(cwd / "shipped"), "--limit", "8", "-q", "--no-report",
               cwd=cwd)
    shipped = [json.loads(line) for line in (cwd / "shipped" / "results.jsonl").read_text().splitlines()]
    assert any(r["axis"] == "task" and r["metric"] == "accuracy" for r in shipped), shipped


def test_multi_kind_package_has_one_entry_point_and_test_file_per_kind():
    files = render("film", ["fusion", "metric", "axis"])
    for kind in ("fusion", "metric", "axis"):
        assert f'"film.{kind}" = "polymodal_film:{kind}_plugin"' in files["pyproject.toml"]
        assert f"src/polymodal_film/{kind}.py" in files and f"tests/test_{kind}.py" in files
    compile(files["src/polymodal_film/__init__.py"], "__init__.py", "exec")
    with pytest.raises(ConfigError, match="given twice"):
        render("film", ["axis", "axes"])


def test_axis_and_model_scaffolds_follow_the_real_contracts():
    axis = render("x", "axis")["src/polymodal_x/axis.py"]
    assert "data.splits[ctx.split]" in axis and "data.collate(" in axis and "ctx.row(" in axis
    assert "with ctx.unit(" in axis and "ctx.unit_done(" in axis
    assert "for batch in data" not in axis
    model = render("x", "model")["src/polymodal_x/model.py"]
    assert "class X(PolymodalModel)" in model and "def __init__(self, config, ctx)" in model


def test_rendered_package_declares_entry_point_and_api():
    files = render("gated-fusion", "fusion")
    assert set(files) == {"pyproject.toml", "README.md", "src/polymodal_gated_fusion/__init__.py",
                          "src/polymodal_gated_fusion/fusion.py", "tests/test_polymodal_gated_fusion.py"}
    assert '"gated-fusion" = "polymodal_gated_fusion:plugin"' in files["pyproject.toml"]
    init = files["src/polymodal_gated_fusion/__init__.py"]
    assert 'POLYMODAL_API = "2.1"' in init and '"polymodal_gated_fusion.fusion:GatedFusion"' in init
    assert "import torch" not in init  # the entry point module must stay light
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")


def test_names_and_refusals(tmp_path, capsys):
    assert names_for("polymodal-my-axis") == names_for("my-axis") == {
        "dist": "polymodal-my-axis", "pkg": "polymodal_my_axis", "name": "my-axis", "cls": "MyAxis"}
    for bad in ("My_Plugin", "-x", "a--b", "x/../y"):
        with pytest.raises(ConfigError, match="lower case"):
            names_for(bad)
    with pytest.raises(UnknownNameError, match="unknown component kind"):
        render("x", "widget")
    assert main(["new-plugin", "x", "--kind", "metric", "--dir", str(tmp_path)]) == 0
    assert main(["new-plugin", "x", "--kind", "metric", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["new-plugin", "x", "--kind", "metric", "--dir", str(tmp_path), "--force"]) == 0


def test_every_registrable_kind_has_a_scaffold():
    assert sorted(kind_of(kind) for kind in SCAFFOLD_KINDS) == sorted(KINDS)
    files = render("noise", APP)
    for kind in APP:
        module = kind.replace("-", "_")
        assert f"src/polymodal_noise/{module}.py" in files and f"tests/test_{module}.py" in files
    init = files["src/polymodal_noise/__init__.py"]
    # a corruption's name starts with its raw format, which its tag repeats; these kinds' factories are functions
    assert '"rgb.noise",\n    "polymodal_noise.corruption:noise",' in init and 'tags=["rgb"]' in init
    for target in ("report_section:noise_section", "suite:noise_suite", "command:configure", "trainer:train",
                   "reporter:Noise"):
        assert f'"polymodal_noise.{target}"' in init
    # the shipped suite file is package data, so an installed package finds it
    assert 'name = "noise"' in files["src/polymodal_noise/suites/noise.toml"]
    assert '"polymodal_noise" = ["suites/*.toml"]' in files["pyproject.toml"]
    assert "package-data" not in render("noise", "fusion")["pyproject.toml"]
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")


def test_every_scaffold_imports_only_its_tier_of_the_public_api(tmp_path):
    """What a scaffold teaches is what test_public_api holds the repository's own plugins to."""
    bad = []
    for word in SCAFFOLD_KINDS:
        kind = kind_of(word)
        module = word.replace("-", "_")
        path = tmp_path / f"{module}.py"
        path.write_text(render("x", word)[f"src/polymodal_x/{module}.py"])
        tier = TIERS["application" if kind in APPLICATION_KINDS else "component"]
        bad += [f"{word}:{line}: {name}" for line, name in polymodal_imports(path) if name not in tier]
    assert not bad, "scaffolds importing outside their kind's tier (docs/public-api.md):\n" + "\n".join(bad)
