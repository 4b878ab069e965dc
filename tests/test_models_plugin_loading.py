"""Plugin managers built after implementation modules were imported still see every component.

A built-in plugin package holds ``concat = component(...)`` next to
``concat.py``; importing the submodule rebinds the package attribute, which
used to make every later manager silently lose that component.
"""

from __future__ import annotations

import importlib

from polymodal.plugins import PluginSettings, build_plugin_manager


def test_second_manager_after_imports_has_everything():
    first = build_plugin_manager(PluginSettings())
    before = {kind: sorted(reg.names()) for kind, reg in first.registries.items()}
    for kind in ("fusions", "encoders", "modalities", "datasets", "models"):
        for spec in first.list(kind):
            if isinstance(spec.factory, str):
                importlib.import_module(spec.factory.partition(":")[0])  # what building does
    second = build_plugin_manager(PluginSettings())
    after = {kind: sorted(reg.names()) for kind, reg in second.registries.items()}
    assert after == before
    assert "concat" in after["fusions"] and "fusion-classifier" in after["models"]
    assert not second.failed()
