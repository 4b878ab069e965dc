"""Registries of component *specs*: names with lazy factories.

A spec is cheap to hold: listing and describing components imports nothing
heavy. Only :meth:`ComponentSpec.load` imports the implementation.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from polymodal.errors import ConflictError, PluginError, UnknownNameError, did_you_mean

#: The component kinds, in the order ``polymodal list`` shows them. Each has a
#: ``register_<kind>`` hook.
KINDS: tuple[str, ...] = (
    "modalities",
    "encoders",
    "fusions",
    "models",
    "metrics",
    "axes",
    "attacks",
    "corruptions",
    "datasets",
    "trainers",
    "reporters",
    "suites",
    "commands",
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def kind_of(word: str) -> str:
    """Resolve a kind name, accepting the singular (``fusion`` -> ``fusions``)."""
    if word in KINDS:
        return word
    for kind in KINDS:
        if word in (kind[:-1], kind[:-2]) or (kind == "axes" and word == "axis"):
            return kind
    raise UnknownNameError(f"unknown component kind {word!r}{did_you_mean(word, KINDS)}; kinds are: {', '.join(KINDS)}")


@attrs.frozen
class ComponentSpec:
    """What a plugin registered under one name."""

    name: str
    kind: str
    plugin: str
    distribution: str
    factory: Callable[..., Any] | str = attrs.field(repr=False)
    description: str = ""
    params: dict[str, Any] | None = None
    replaces: str | None = None
    capabilities: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()

    @property
    def target(self) -> str:
        """The factory as a ``module:attribute`` string (for display)."""
        if isinstance(self.factory, str):
            return self.factory
        module = getattr(self.factory, "__module__", "?")
        return f"{module}:{getattr(self.factory, '__qualname__', repr(self.factory))}"

    def load(self) -> Callable[..., Any]:
        """Import and return the factory. Heavy imports happen here."""
        if not isinstance(self.factory, str):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
            raise PluginError(
                f"{self.kind[:-1] if self.kind != 'axes' else 'axis'} {self.name!r} from plugin "
                f"{self.plugin!r} ({self.distribution}): cannot import {self.factory!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return obj

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Load the factory and call it."""
        return self.load()(*args, **kwargs)

    def parameters(self) -> dict[str, Any]:
        """Declared parameters, or those read from the factory's signature.

        Values are the defaults; a parameter without a default maps to the
        string ``"<required>"``. Reading the signature imports the factory.
        """
        if self.params is not None:
            return dict(self.params)
        sig = self._signature()
        if sig is None:
            return {}
        out: dict[str, Any] = {}
        for p in sig.parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = "<required>" if p.default is p.empty else p.default
        return out

    def _signature(self) -> inspect.Signature | None:
        factory = self.load()
        if isinstance(factory, type):
            factory = factory.__init__  # type: ignore[misc]
        try:
            return inspect.signature(factory)
        except (TypeError, ValueError):
            return None

    def unknown_parameters(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` the factory does not take (none when it takes ``**kwargs``)."""
        sig = self._signature()
        if sig is None or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return []
        known = self.parameters()
        return [n for n in names if n not in known]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "description": self.description,
            "target": self.target,
            "capabilities": sorted(self.capabilities),
            "tags": sorted(self.tags),
            "replaces": self.replaces,
        }


@attrs.define
class Registry:
    """All specs of one kind, plus the conflicts found while loading."""

    kind: str
    specs: dict[str, ComponentSpec] = attrs.field(factory=dict)
    conflicts: dict[str, list[ComponentSpec]] = attrs.field(factory=dict)
    #: Names of plugins that are disabled or failed, with their reasons, for hints.
    unavailable: dict[str, str] = attrs.field(factory=dict)

    def add(self, spec: ComponentSpec) -> None:
        """Add a spec, resolving an explicit ``replaces`` or recording a conflict.

        The outcome never depends on the order plugins load in.
        """
        name = spec.name
        if name in self.conflicts:
            self.conflicts[name].append(spec)
            return
        old = self.specs.get(name)
        if old is None:
            self.specs[name] = spec
            return
        if spec.replaces == old.plugin and old.replaces != spec.plugin:
            self.specs[name] = spec
        elif old.replaces == spec.plugin and spec.replaces != old.plugin:
            pass
        else:
            del self.specs[name]
            self.conflicts[name] = [old, spec]

    def names(self) -> list[str]:
        return sorted(self.specs)

    def list(self, pattern: str | None = None) -> list[ComponentSpec]:
        """Specs whose name matches a shell-style wildcard, sorted by name."""
        names = self.names()
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return [self.specs[n] for n in names]

    def get(self, name: str) -> ComponentSpec:
        """The spec called ``name``; a helpful error when there is none."""
        if name in self.specs:
            return self.specs[name]
        singular = "axis" if self.kind == "axes" else self.kind[:-1]
        if name in self.conflicts:
            raise ConflictError(conflict_message(singular, name, self.conflicts[name]))
        msg = f"unknown {singular} {name!r}{did_you_mean(name, self.specs)}"
        hints = [f"plugin {p!r} is {why}" for p, why in sorted(self.unavailable.items()) if _related(name, p)]
        if hints:
            msg += "; it may come from a plugin that is not loaded: " + "; ".join(hints)
        elif self.specs:
            msg += f"; available: {', '.join(self.names())}"
        raise UnknownNameError(msg)

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __len__(self) -> int:
        return len(self.specs)


def _related(name: str, plugin: str) -> bool:
    """Whether a component name plausibly belongs to a plugin (for hints only)."""
    parts = re.split(r"[._\-:]", plugin.lower())
    n = name.lower()
    return n in parts or n == plugin.lower() or plugin.lower().endswith(n) or bool(
        did_you_mean(n, parts)
    )


def conflict_message(singular: str, name: str, specs: Iterable[ComponentSpec]) -> str:
    who = " and ".join(f"plugin {s.plugin!r} (distribution {s.distribution})" for s in specs)
    return (
        f"{singular} {name!r} is registered by {who}; disable one of them "
        f"(POLYMODAL_DISABLE_PLUGINS or [plugins] disable) or have one declare "
        f"replaces=<plugin name>"
    )


class Register:
    """The ``register`` callback handed to a plugin's registration hook.

    It validates each registration at once and stamps it with the plugin and
    distribution that made it.
    """

    def __init__(self, kind: str, plugin: str, distribution: str, sink: Callable[[ComponentSpec], None]):
        self.kind = kind
        self.plugin = plugin
        self.distribution = distribution
        self._sink = sink
        self.registered: list[str] = []

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        *,
        description: str = "",
        params: dict[str, Any] | None = None,
        replaces: str | None = None,
        capabilities: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> None:
        where = f"plugin {self.plugin!r} registering {self.kind[:-1] if self.kind != 'axes' else 'axis'} {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{where}: names must be lower case letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if isinstance(factory, str):
            if not _TARGET.match(factory):
                raise PluginError(f"{where}: a lazy factory must be a 'module:attribute' string, got {factory!r}")
        elif not callable(factory):
            raise PluginError(f"{where}: factory must be callable or a 'module:attribute' string, got {type(factory).__name__}")
        if not isinstance(description, str):
            raise PluginError(f"{where}: description must be a string")
        if params is not None and not isinstance(params, dict):
            raise PluginError(f"{where}: params must be a dict of name -> default")
        if isinstance(capabilities, str) or isinstance(tags, str):
            raise PluginError(f"{where}: capabilities and tags must be lists of strings, not a string")
        spec = ComponentSpec(
            name=name,
            kind=self.kind,
            plugin=self.plugin,
            distribution=self.distribution,
            factory=factory,
            description=description.strip().splitlines()[0] if description.strip() else "",
            params=params,
            replaces=replaces,
            capabilities=frozenset(capabilities),
            tags=frozenset(tags),
        )
        self._sink(spec)
        self.registered.append(name)
