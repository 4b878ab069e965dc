"""Light plugin objects that register lazily imported components.

Most plugins register a single component whose implementation imports torch.
Writing the entry point as a :func:`component` keeps ``polymodal list`` fast::

    concat = component("fusions", "concat", "my_pkg.concat:ConcatFusion",
                       description="Concatenate pooled modality features.")

and in ``pyproject.toml``: ``[project.entry-points.polymodal] concat = "my_pkg.plugins:concat"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from polymodal.hooks import hookimpl
from polymodal.registry import KINDS, Register


class ComponentPlugin:
    """A plugin object registering one or more components of possibly several kinds."""

    def __init__(self, entries: Iterable[tuple[str, str, Any, dict[str, Any]]]):
        self._entries = list(entries)
        for kind, *_ in self._entries:
            if kind not in KINDS:
                raise ValueError(f"unknown component kind {kind!r}")
        kinds = {e[0] for e in self._entries}
        for kind in KINDS:
            if kind not in kinds:
                setattr(self, f"register_{kind}", None)  # hide the hook from pluggy

    def _register(self, kind: str, register: Register) -> None:
        for k, name, factory, options in self._entries:
            if k == kind:
                register(name, factory, **options)

    @hookimpl
    def register_modalities(self, register: Register) -> None:
        self._register("modalities", register)

    @hookimpl
    def register_encoders(self, register: Register) -> None:
        self._register("encoders", register)

    @hookimpl
    def register_fusions(self, register: Register) -> None:
        self._register("fusions", register)

    @hookimpl
    def register_models(self, register: Register) -> None:
        self._register("models", register)

    @hookimpl
    def register_metrics(self, register: Register) -> None:
        self._register("metrics", register)

    @hookimpl
    def register_axes(self, register: Register) -> None:
        self._register("axes", register)

    @hookimpl
    def register_attacks(self, register: Register) -> None:
        self._register("attacks", register)

    @hookimpl
    def register_corruptions(self, register: Register) -> None:
        self._register("corruptions", register)

    @hookimpl
    def register_datasets(self, register: Register) -> None:
        self._register("datasets", register)

    @hookimpl
    def register_trainers(self, register: Register) -> None:
        self._register("trainers", register)

    @hookimpl
    def register_strategies(self, register: Register) -> None:
        self._register("strategies", register)

    @hookimpl
    def register_reporters(self, register: Register) -> None:
        self._register("reporters", register)

    @hookimpl
    def register_suites(self, register: Register) -> None:
        self._register("suites", register)

    @hookimpl
    def register_commands(self, register: Register) -> None:
        self._register("commands", register)

    def __repr__(self) -> str:
        return "ComponentPlugin(" + ", ".join(f"{k}:{n}" for k, n, _, _ in self._entries) + ")"


def component(kind: str, name: str, factory: Any, **options: Any) -> ComponentPlugin:
    """A plugin object that registers one component (see module docstring)."""
    return ComponentPlugin([(kind, name, factory, options)])


def components(*entries: tuple[str, str, Any, dict[str, Any]]) -> ComponentPlugin:
    """A plugin object that registers several components: ``(kind, name, factory, options)``."""
    return ComponentPlugin(entries)
