"""A pytest plugin for plugin authors (entry point ``pytest11``).

Fixtures:

``make_plugins``
    ``make_plugins(*objects, entry_points=False, **settings)`` builds a fresh
    :class:`~polymodal.plugins.Plugins` holding exactly the given plugin
    objects (modules or instances), optionally on top of installed entry points.

``polymodal_plugin``
    a context manager factory: ``with polymodal_plugin(obj, name="mine"):``
    makes the process-wide manager (what the CLI and runner use) include
    ``obj`` on top of the installed plugins, restoring it afterwards.

Contract checkers, one per kind (see :mod:`polymodal.contract_checks`):
``check_fusion``, ``check_encoder``, ``check_modality``, ``check_metric``,
``check_model``, ``check_dataset``, ``check_attack``, ``check_strategy``, ``check_axis_rows``,
``check_corruption``, ``check_reporter``, ``check_report_section``, ``check_command``, ``check_suite`` and ``check_trainer`` (see :mod:`polymodal.contract_checks_app`;
``tiny_results_dir`` writes the small results folder they render).
Each raises :class:`ContractError` naming the broken promise.

``run_suite_with(suite, *plugin_objects, out=..., limit=8)`` runs a suite in-process
with your plugin objects added, as ``polymodal run --limit 8`` would once installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from polymodal import plugins as _plugins
from polymodal.contract_checks import (  # noqa: F401 - re-exported for plugin authors
    ContractError,
    check_attack,
    check_axis_rows,
    check_dataset,
    check_encoder,
    check_fusion,
    check_metric,
    check_modality,
    check_model,
    check_strategy,
)
from polymodal.contract_checks_app import (  # noqa: F401 - re-exported for plugin authors
    check_command,
    check_corruption,
    check_report_section,
    check_reporter,
    check_suite,
    check_trainer,
    tiny_results_dir,
)
from polymodal.plugins import PluginSettings, Plugins, build_plugin_manager


def make_plugin_manager(*objects: Any, entry_points: bool = False, names: list[str] | None = None,
                        **settings: Any) -> Plugins:
    """Build a manager with exactly ``objects`` (plus entry points when asked).

    With ``entry_points=True``, an installed entry point that loads one of
    ``objects`` is left out, so a package's tests pass the same way before and
    after ``pip install`` (instead of registering every component twice).
    """
    names = names or [getattr(o, "__name__", None) or f"plugin{i}" for i, o in enumerate(objects)]
    plugin_settings = PluginSettings(**settings)
    if entry_points and objects:
        same = _entry_points_loading(objects)
        if same:
            plugin_settings = attrs.evolve(plugin_settings, disable=(*plugin_settings.disable, *same))
    return build_plugin_manager(
        plugin_settings, entry_points=entry_points, extra_plugins=dict(zip(names, objects, strict=True))
    )


def _entry_points_loading(objects: tuple[Any, ...]) -> list[str]:
    """Names of installed ``polymodal`` entry points whose object is one of ``objects``."""
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=_plugins.ENTRY_POINT_GROUP):  # light modules, loaded anyway
        try:
            obj = _plugins._unshadow(ep, ep.load())
        except Exception:  # noqa: BLE001 - a broken entry point is reported by the manager itself
            continue
        if any(obj is o for o in objects):
            found.append(ep.name)
    return found


@contextlib.contextmanager
def registered_plugin(obj: Any, name: str = "test-plugin", **settings: Any) -> Iterator[Plugins]:
    """Temporarily make the process-wide manager include ``obj``."""
    previous = _plugins._default
    built = build_plugin_manager(PluginSettings.from_env(base=PluginSettings(**settings)), extra_plugins={name: obj})
    _plugins.set_plugins(built)
    try:
        yield built
    finally:
        _plugins.set_plugins(previous)


@pytest.fixture
def make_plugins() -> Callable[..., Plugins]:
    return make_plugin_manager


@pytest.fixture
def polymodal_plugin() -> Callable[..., contextlib.AbstractContextManager[Plugins]]:
    return registered_plugin


def run_suite_with(suite: str | Any, *objects: Any, out: str | Any, limit: int | None = 8,
                   names: list[str] | None = None) -> list[dict[str, Any]]:
    """Run a suite in-process with the installed plugins plus ``objects``; returns the result rows.

    What ``polymodal run SUITE --out OUT --limit LIMIT`` does once your
    package is installed, for a test that has not installed it: the runner
    validates the suite, trains each run and evaluates every axis.
    """
    import json
    from pathlib import Path

    from polymodal.runner import RunOptions, run_suite

    names = names or [f"test-plugin{i}" for i in range(len(objects))]
    env = PluginSettings.from_env()
    plugins = make_plugin_manager(*objects, entry_points=True, names=names, load=env.load, disable=env.disable)
    previous = _plugins._default
    _plugins.set_plugins(plugins)
    try:
        run_suite(str(suite), plugins=plugins, options=RunOptions(out=Path(out), limit=limit, progress=False))
    finally:
        _plugins.set_plugins(previous)
    lines = (Path(out) / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
