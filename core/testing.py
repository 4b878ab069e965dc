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
``check_fusion``, ``check_encoder``, ``check_modality``, ``check_metric`` and
``check_axis_rows``. Each raises :class:`ContractError` naming the broken promise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from polymodal import plugins as _plugins
from polymodal.contract_checks import (  # noqa: F401 - re-exported for plugin authors
    ContractError,
    check_axis_rows,
    check_encoder,
    check_fusion,
    check_metric,
    check_modality,
)
from polymodal.plugins import PluginSettings, Plugins, build_plugin_manager


def make_plugin_manager(*objects: Any, entry_points: bool = False, names: list[str] | None = None,
                        **settings: Any) -> Plugins:
    """Build a manager with exactly ``objects`` (plus entry points when asked)."""
    names = names or [getattr(o, "__name__", None) or f"plugin{i}" for i, o in enumerate(objects)]
    return build_plugin_manager(
        PluginSettings(**settings), entry_points=entry_points, extra_plugins=dict(zip(names, objects, strict=True))
    )


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
