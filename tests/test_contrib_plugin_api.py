"""The declared plugin API version (``POLYMODAL_API``) is checked when a plugin loads."""

from __future__ import annotations

import types

import pytest

from polymodal import PLUGIN_API_VERSION, PluginError, UnknownNameError, component

MAJOR, MINOR = (int(x) for x in PLUGIN_API_VERSION.split("."))


def fusion_plugin(api: str | None, name: str = "tensor"):
    plugin = component("fusions", name, "polymodal_fusion_zoo.tensor_fusion:TensorFusion", description="x")
    if api is not None:
        plugin.POLYMODAL_API = api
    return plugin


@pytest.mark.parametrize("api", [None, PLUGIN_API_VERSION, f"{MAJOR}.0", f"{MAJOR}.{MINOR}.7"])
def test_compatible_or_undeclared_api_loads(make_plugins, api):
    plugins = make_plugins(fusion_plugin(api), names=["zoo.tensor"])
    assert plugins.records["zoo.tensor"].status == "loaded"
    assert plugins.get("fusions", "tensor").plugin == "zoo.tensor"


@pytest.mark.parametrize("api", [f"{MAJOR}.{MINOR + 1}", f"{MAJOR + 1}.0", "0.9"])
def test_incompatible_api_is_refused_with_a_clear_reason(make_plugins, api):
    plugins = make_plugins(fusion_plugin(api), fusion_plugin(None, name="other"), names=["zoo.tensor", "ok"])
    record = plugins.records["zoo.tensor"]
    assert record.status == "failed"
    assert f"needs polymodal plugin API {api}" in record.reason
    assert f"provides API {PLUGIN_API_VERSION}" in record.reason and "upgrade polymodal" in record.reason
    assert record.registered == {}  # its hooks never ran
    assert plugins.get("fusions", "other").plugin == "ok"  # the rest keep working
    with pytest.raises(UnknownNameError, match=r"plugin 'zoo.tensor' is failed \(needs polymodal plugin API"):
        plugins.get("fusions", "tensor")


def test_malformed_declaration_is_refused(make_plugins):
    plugins = make_plugins(fusion_plugin("latest"), names=["zoo.tensor"])
    assert plugins.records["zoo.tensor"].status == "failed"
    assert "POLYMODAL_API='latest'; expected 'MAJOR.MINOR'" in plugins.records["zoo.tensor"].reason


def test_module_level_declaration_is_read(make_plugins):
    module = types.ModuleType("future_plugin")
    module.POLYMODAL_API = f"{MAJOR}.{MINOR + 5}"
    plugins = make_plugins(module, names=["future"])
    assert plugins.records["future"].status == "failed"


def test_strict_mode_turns_refusal_into_an_error(make_plugins):
    with pytest.raises(PluginError, match=r"plugin 'zoo.tensor' \(<in-process>\) failed: needs polymodal plugin API"):
        make_plugins(fusion_plugin(f"{MAJOR + 1}.0"), names=["zoo.tensor"], strict=True)
