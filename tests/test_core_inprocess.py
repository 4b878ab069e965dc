"""The plugin manager in-process: fixtures, ordering, registration validation."""

from __future__ import annotations

import pytest

import polymodal
from polymodal import ConflictError, PluginError, UnknownNameError, component, hookimpl
from polymodal.plugins import PluginSettings, build_plugin_manager, get_plugins


class Encoders:
    @hookimpl
    def register_encoders(self, register):
        register("alpha", lambda: "A", description="First.")
        register("beta", "json:dumps", capabilities=["embed"])


def test_fixture_builds_fresh_manager_with_exactly_given_plugins(make_plugins) -> None:
    plugins = make_plugins(Encoders(), names=["enc"])
    assert [s.name for s in plugins.list("encoders")] == ["alpha", "beta"]
    assert plugins.build("encoder", "alpha") == "A"
    assert plugins.get("encoders", "beta").capabilities == frozenset({"embed"})
    assert plugins.records["enc"].registered == {"encoders": ["alpha", "beta"]}
    again = make_plugins(names=[])
    assert len(again.list("encoders")) == 0


def test_polymodal_plugin_context_manager_restores_previous(polymodal_plugin) -> None:
    before = get_plugins()
    with polymodal_plugin(Encoders(), name="enc") as plugins:
        assert get_plugins() is plugins
        assert "alpha" in plugins.registry("encoders")
    assert get_plugins() is before


@pytest.mark.parametrize("order", [0, 1])
def test_conflict_outcome_does_not_depend_on_load_order(make_plugins, order: int) -> None:
    a = component("fusions", "x", "json:dumps")
    b = component("fusions", "x", "json:loads")
    objs, names = ([a, b], ["a", "b"]) if order == 0 else ([b, a], ["b", "a"])
    plugins = make_plugins(*objs, names=names)
    with pytest.raises(ConflictError, match="'a'.*'b'|'b'.*'a'"):
        plugins.get("fusions", "x")
    r = component("fusions", "x", "json:loads", replaces="a")
    objs, names = ([a, r], ["a", "r"]) if order == 0 else ([r, a], ["r", "a"])
    assert make_plugins(*objs, names=names).get("fusions", "x").plugin == "r"


def test_strict_mode_raises_on_conflict_and_hook_errors() -> None:
    a = component("fusions", "x", "json:dumps")
    b = component("fusions", "x", "json:loads")
    with pytest.raises(PluginError, match="registered by"):
        build_plugin_manager(PluginSettings(strict=True), entry_points=False, extra_plugins={"a": a, "b": b})

    class Raises:
        @hookimpl
        def register_metrics(self, register):
            raise RuntimeError("boom")

    plugins = build_plugin_manager(PluginSettings(), entry_points=False, extra_plugins={"r": Raises(), "a": a})
    assert plugins.records["r"].status == "failed" and "boom" in plugins.records["r"].reason
    assert plugins.get("fusions", "x").plugin == "a"
    with pytest.raises(PluginError, match="plugin 'r'"):
        build_plugin_manager(PluginSettings(strict=True), entry_points=False, extra_plugins={"r": Raises()})


def test_partial_registrations_of_a_failing_plugin_are_discarded(make_plugins) -> None:
    class Half:
        @hookimpl
        def register_models(self, register):
            register("good-one", "json:dumps")
            register("bad one", "json:dumps")

    plugins = make_plugins(Half(), names=["half"])
    assert plugins.records["half"].status == "failed"
    assert "good-one" not in plugins.registry("models")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("ok", "not a target"), {}, "module:attribute"),
        (("ok", 42), {}, "factory must be callable"),
        (("ok", "json:dumps"), {"capabilities": "embed"}, "lists of strings"),
        (("ok", "json:dumps"), {"params": ["x"]}, "params must be an attrs class"),
    ],
)
def test_register_validates_immediately(make_plugins, args, kwargs, message) -> None:
    class P:
        @hookimpl
        def register_axes(self, register):
            register(*args, **kwargs)

    plugins = make_plugins(P(), names=["p"])
    assert plugins.records["p"].status == "failed"
    assert message in plugins.records["p"].reason


def test_unknown_hook_name_is_reported(make_plugins) -> None:
    class Typo:
        @hookimpl
        def register_fusion(self, register):  # missing 's'
            pass

    plugins = make_plugins(Typo(), names=["typo"])
    assert plugins.records["typo"].status == "failed"
    assert "did you mean 'register_fusions'" in plugins.records["typo"].reason


def test_lazy_factory_import_error_names_plugin(make_plugins) -> None:
    plugins = make_plugins(component("models", "m", "no_such_module_xyz:Thing"), names=["mp"])
    with pytest.raises(PluginError, match="model 'm' from plugin 'mp'.*no_such_module_xyz"):
        plugins.build("models", "m")
    with pytest.raises(UnknownNameError, match="unknown model 'n'"):
        plugins.get("models", "n")


def test_public_api_surface() -> None:
    assert polymodal.PLUGIN_API_VERSION == "2.1"
    assert callable(polymodal.build_plugin_manager)


def test_replaces_with_a_component_name_gets_a_hint(make_plugins) -> None:
    a = component("fusions", "concat", "json:dumps")
    b = component("fusions", "concat", "json:loads", replaces="concat")  # the component, not the plugin
    plugins = make_plugins(a, b, names=["fusion.concat", "mine"])
    with pytest.raises(ConflictError, match=r"replaces='concat', which is the component name.*'fusion.concat'"):
        plugins.get("fusions", "concat")


@pytest.mark.parametrize("word", ["modality", "modalities", "axis", "axes", "suite", "metric"])
def test_cli_list_and_info_accept_singular_and_plural_kinds(word: str, capsys: pytest.CaptureFixture) -> None:
    from polymodal.cli import main

    assert main(["list", word]) == 0
    listed = capsys.readouterr().out.split()
    assert listed, f"nothing listed for {word!r}"
    name = listed[0]
    assert main(["info", word, name]) == 0
    assert name in capsys.readouterr().out


def test_cli_info_suite_prints_path_and_file(capsys: pytest.CaptureFixture) -> None:
    import json
    from pathlib import Path

    from polymodal.cli import main

    assert main(["info", "suite", "quickstart"]) == 0
    out = capsys.readouterr().out
    path = Path(out.split("file: ", 1)[1].splitlines()[0])
    assert path.name == "quickstart.toml" and path.read_text(encoding="utf-8").strip() in out
    assert main(["info", "suites", "quickstart", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert Path(info["path"]) == path and info["content"] == path.read_text(encoding="utf-8")
