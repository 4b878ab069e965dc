"""The plugin manager through real entry points of throwaway installed distributions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakedist import run_cli, write_dist

GOOD = """
from polymodal import component, components, hookimpl

fancy = component("fusions", "fancy", "good_impl:Fancy", description="A fancy fusion.\\nMore text.",
                  params={"dim": 8})

class _Encoders:
    @hookimpl
    def register_encoders(self, register):
        register("toy-a", "good_impl:Fancy", description="Toy encoder A.")
        register("toy-b", "good_impl:Fancy", description="Toy encoder B.")

encoders = _Encoders()
"""

GOOD_IMPL = """
class Fancy:
    def __init__(self, input_dims, dim=8, gate=True):
        self.dim = dim
"""

CLASH = """
from polymodal import component
fancy = component("fusions", "fancy", "good_impl:Fancy", description="Another fancy.")
"""

REPLACER = """
from polymodal import component
fancy = component("fusions", "fancy", "good_impl:Fancy", description="Better fancy.", replaces="good.fancy")
"""

BROKEN = """
raise ImportError("this plugin needs a package that is not installed")
"""

NEWAPI = """
from polymodal import component
POLYMODAL_API = "1.9"
plugin = component("fusions", "future", "good_impl:Fancy")
"""

BADNAME = """
from polymodal import component
plugin = component("fusions", "Bad Name!", "good_impl:Fancy")
"""

TENSOR = """
from polymodal import component
plugin = component("fusions", "hyperbolic", "good_impl:Fancy", description="Hyperbolic fusion.")
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    write_dist(root, "pm-good", {"good_plugin": GOOD, "good_impl": GOOD_IMPL},
               {"good.fancy": "good_plugin:fancy", "good.encoders": "good_plugin:encoders"}, version="2.3")
    write_dist(root, "pm-broken", {"broken_plugin": BROKEN}, {"broken": "broken_plugin"})
    return root


def plugins_json(site: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = run_cli(["plugins", "--json", *args], site, env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    data["by_name"] = {p["name"]: p for p in data["plugins"]}
    return data


def test_entry_points_are_discovered_with_distribution_and_registrations(site: Path) -> None:
    data = plugins_json(site)
    good = data["by_name"]["good.fancy"]
    assert good["status"] == "loaded"
    assert good["distribution"] == "pm-good" and good["version"] == "2.3"
    assert good["registered"] == {"fusions": ["fancy"]}
    assert data["by_name"]["good.encoders"]["registered"] == {"encoders": ["toy-a", "toy-b"]}
    assert "register_encoders" in data["by_name"]["good.encoders"]["hooks"]


def test_broken_plugin_is_isolated_and_reported(site: Path) -> None:
    data = plugins_json(site)
    broken = data["by_name"]["broken"]
    assert broken["status"] == "failed"
    assert "error importing plugin 'broken'" in broken["reason"]
    assert "not installed" in broken["reason"]
    proc = run_cli(["list", "fusions", "--json"], site)
    assert proc.returncode == 0
    assert "fancy" in [s["name"] for s in json.loads(proc.stdout)["fusions"]]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_strict_mode_turns_a_broken_plugin_into_an_error(site: Path, how: str) -> None:
    args = ["--strict", "plugins"] if how == "flag" else ["plugins"]
    env = {"POLYMODAL_STRICT_PLUGINS": "1"} if how == "env" else {}
    proc = run_cli(args, site, env)
    assert proc.returncode == 2
    assert "plugin 'broken'" in proc.stderr and "failed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_allow_list_loads_only_named_plugins(site: Path) -> None:
    data = plugins_json(site, env={"POLYMODAL_LOAD_PLUGINS": "good.*"})
    statuses = {n: p["status"] for n, p in data["by_name"].items() if not n.startswith(("fusion.", "encoder."))}
    assert statuses["good.fancy"] == statuses["good.encoders"] == "loaded"
    assert statuses["broken"] == "disabled"
    proc = run_cli(["plugins"], site, {"POLYMODAL_LOAD_PLUGINS": "good.fancyy"})
    assert proc.returncode == 2 and "did you mean 'good.fancy'" in proc.stderr


def test_deny_list_blocks_plugins_by_env_and_config_file(site: Path, tmp_path: Path) -> None:
    data = plugins_json(site, env={"POLYMODAL_DISABLE_PLUGINS": "broken,good.encoders"})
    assert data["by_name"]["broken"]["status"] == "disabled"
    assert data["by_name"]["good.encoders"]["status"] == "disabled"
    assert data["by_name"]["good.fancy"]["status"] == "loaded"
    cfg = tmp_path / "polymodal.toml"
    cfg.write_text('[plugins]\ndisable = ["good.fancy"]\n')
    data = plugins_json(site, "--config", str(cfg)) if False else None
    proc = run_cli(["--config", str(cfg), "plugins", "--json"], site)
    assert proc.returncode == 0, proc.stderr
    by = {p["name"]: p for p in json.loads(proc.stdout)["plugins"]}
    assert by["good.fancy"]["status"] == "disabled" and by["good.encoders"]["status"] == "loaded"


def test_two_providers_of_one_name_is_an_error_naming_both(site: Path) -> None:
    write_dist(site, "pm-clash", {"clash_plugin": CLASH}, {"clash": "clash_plugin:fancy"})
    proc = run_cli(["info", "fusion", "fancy"], site)
    assert proc.returncode == 2
    assert "pm-good" in proc.stderr and "pm-clash" in proc.stderr
    assert "'good.fancy'" in proc.stderr and "'clash'" in proc.stderr
    assert "CONFLICT" in run_cli(["plugins"], site).stdout
    assert run_cli(["--strict", "list"], site, {"POLYMODAL_DISABLE_PLUGINS": "broken"}).returncode == 2


def test_explicit_replacement_is_allowed(site: Path) -> None:
    write_dist(site, "pm-better", {"better_plugin": REPLACER}, {"better": "better_plugin:fancy"})
    proc = run_cli(["info", "fusions", "fancy", "--json"], site)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["plugin"] == "better" and info["replaces"] == "good.fancy"
    assert info["description"] == "Better fancy."


def test_unknown_name_did_you_mean_and_disabled_plugin_hint(site: Path) -> None:
    proc = run_cli(["info", "fusions", "fancey"], site)
    assert proc.returncode == 2 and "did you mean 'fancy'" in proc.stderr
    write_dist(site, "pm-hyper", {"hyper_plugin": TENSOR}, {"fusion.hyperbolic": "hyper_plugin:plugin"})
    proc = run_cli(["info", "fusions", "hyperbolic"], site, {"POLYMODAL_DISABLE_PLUGINS": "fusion.hyperbolic"})
    assert proc.returncode == 2
    assert "plugin 'fusion.hyperbolic' is disabled" in proc.stderr
    proc = run_cli(["info", "fusion", "nothing-like-it"], site)
    assert "unknown fusion 'nothing-like-it'" in proc.stderr


def test_plugin_needing_newer_api_fails_with_clear_message(site: Path) -> None:
    write_dist(site, "pm-future", {"future_plugin": NEWAPI}, {"future": "future_plugin:plugin"})
    by = plugins_json(site)["by_name"]
    assert by["future"]["status"] == "failed"
    assert "needs polymodal plugin API 1.9" in by["future"]["reason"]


def test_invalid_registration_fails_only_that_plugin(site: Path) -> None:
    write_dist(site, "pm-badname", {"badname_plugin": BADNAME}, {"badname": "badname_plugin:plugin"})
    by = plugins_json(site)["by_name"]
    assert by["badname"]["status"] == "failed"
    assert "names must be lower case" in by["badname"]["reason"]
    assert by["good.fancy"]["status"] == "loaded"


def test_list_wildcards_info_parameters_and_trace(site: Path) -> None:
    proc = run_cli(["list", "encoders", "toy-?", "--json"], site)
    assert [s["name"] for s in json.loads(proc.stdout)["encoders"]] == ["toy-a", "toy-b"]
    proc = run_cli(["list", "encoder", "*-b"], site)
    assert "toy-b" in proc.stdout and "toy-a" not in proc.stdout
    proc = run_cli(["info", "fusions", "fancy", "--json"], site)
    assert json.loads(proc.stdout)["parameters"] == {"dim": 8}
    proc = run_cli(["info", "encoders", "toy-a", "--json"], site)
    assert json.loads(proc.stdout)["parameters"] == {"input_dims": "<required>", "dim": 8, "gate": True}
    proc = run_cli(["list", "fusionz"], site)
    assert proc.returncode == 2 and "unknown component kind" in proc.stderr
    proc = run_cli(["plugins"], site, {"POLYMODAL_TRACE_PLUGINS": "1"})
    assert "polymodal trace: register_fusions" in proc.stderr


def test_errors_have_no_traceback_unless_debug(site: Path) -> None:
    proc = run_cli(["info", "fusions", "nope"], site)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("polymodal: error:")
    proc = run_cli(["--debug", "info", "fusions", "nope"], site)
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_listing_never_imports_torch(site: Path) -> None:
    code = (
        "import sys\n"
        "from polymodal.cli import main\n"
        "for argv in (['plugins'], ['plugins', '--json'], ['list'], ['list', '--json'], ['--version'], ['--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'transformers', 'timm', 'PIL', 'matplotlib') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = run_cli([], site, code=code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY="


def test_version_and_module_entry() -> None:
    proc = run_cli(["--version"])
    assert proc.returncode == 0 and proc.stdout.startswith("polymodal ")
