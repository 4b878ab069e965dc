"""Axis parameter conversion shared by the axis classes."""

from __future__ import annotations

from typing import Any


def as_list(value: Any) -> list[Any]:
    """A suite value that may be one item or a list (``methods = "shapley"``) -> a list."""
    if isinstance(value, (str, bytes, int, float)):
        return [value]
    return list(value)
