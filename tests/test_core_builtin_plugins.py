"""The built-in plugins are ordinary, well-formed entry points."""

from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata

from polymodal.plugins import PluginSettings, build_plugin_manager

BUILTIN = [ep for ep in metadata.entry_points(group="polymodal") if ep.dist is not None and ep.dist.name == "polymodal"]


def test_every_builtin_entry_point_is_a_light_plugin_object_not_shadowed_by_a_submodule() -> None:
    assert len(BUILTIN) >= 40
    for ep in BUILTIN:
        assert ep.attr, f"{ep.name}: point at a plugin object (module:attr)"
        package = importlib.util.find_spec(ep.module)
        if package is None or package.submodule_search_locations is None:
            continue  # a plain module cannot be shadowed by a submodule
        assert importlib.util.find_spec(f"{ep.module}.{ep.attr}") is None, (
            f"{ep.name}: {ep.value} has the name of a submodule; importing that submodule would replace "
            "the plugin object and the plugin would register nothing"
        )


def test_registration_survives_importing_every_implementation_first() -> None:
    plugins = build_plugin_manager(PluginSettings())
    targets = {spec.target.partition(":")[0] for kind in plugins.registries.values() for spec in kind.specs.values()
               if isinstance(spec.factory, str)}
    for module in sorted(targets):
        if module.startswith("polymodal_plugins."):
            importlib.import_module(module)
    again = build_plugin_manager(PluginSettings())
    assert not again.failed(), [(r.name, r.reason) for r in again.failed()]
    for kind in ("modalities", "encoders", "fusions", "models", "metrics", "axes", "attacks", "datasets",
                 "trainers", "reporters", "suites", "commands"):
        assert {s.name for s in again.list(kind)} == {s.name for s in plugins.list(kind)}, kind
        assert again.list(kind), f"no built-in {kind}"


def test_each_builtin_can_be_disabled_by_name() -> None:
    plugins = build_plugin_manager(PluginSettings(disable=("fusion.attention",)))
    assert plugins.records["fusion.attention"].status == "disabled"
    assert "attention" not in plugins.registry("fusions")
    assert "concat" in plugins.registry("fusions")
