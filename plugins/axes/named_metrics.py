"""Metrics a suite chooses by name (``[axes.<label>] metrics = [...]``), built through the registry.

An axis that lets a suite choose its figures declares ``metric_feeds`` (see
:func:`polymodal.evaluation.metric_feeds`); the runner checks the names
against it before anything trains. Building by name, never by import, is
what makes a metric another plugin ``replaces`` the one used.
"""

from __future__ import annotations

from typing import Any

from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext


def build_named(ctx: AxisContext, names: list[str] | None, capability: str,
                **params: Any) -> list[tuple[str, Any]] | None:
    """The chosen metrics whose spec declares ``capability``, built with ``params``; None: none chosen."""
    if names is None:
        return None
    built = []
    for name in names:
        spec = ctx.plugins.get("metrics", name)
        if capability not in spec.capabilities:
            continue
        try:
            built.append((name, spec.build(**params)))
        except TypeError as exc:  # a factory that does not take what the capability's contract passes
            raise ConfigError(f"axis {ctx.axis}: metrics: metric {name!r} declares {capability!r}, so it is built "
                              f"with {sorted(params) or 'no arguments'}: {exc}") from None
    return built


def figures(value: Any, name: str) -> dict[str, float]:
    """A metric's ``compute()`` as row figures: a scalar under its registry name, a dict's scalars by key."""
    if isinstance(value, dict):
        return {k: float(v) for k, v in value.items() if getattr(v, "numel", lambda: 1)() == 1}
    return {name: float(value)}
