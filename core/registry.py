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
    "strategies",
    "reporters",
    "suites",
    "commands",
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def kind_of(word: str) -> str:
    """Resolve a kind name, accepting the singular (``fusion`` -> ``fusions``, ``modality`` -> ``modalities``)."""
    if word in KINDS:
        return word
    for kind in KINDS:
        if word in (kind[:-1], kind[:-2], singular(kind)):
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
    #: Declared parameters: an ``attrs`` class (or its lazy ``"module:Class"``
    #: string), or, the plugin API 1 form, a dict of name -> default.
    params: dict[str, Any] | type | str | None = None
    replaces: str | None = None
    capabilities: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    #: The plugin API its plugin declares (``POLYMODAL_API``); None: the current one.
    api: str | None = None

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
        return _import_target(self.factory, self, "factory")

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Load the factory and call it."""
        return self.load()(*args, **kwargs)

    def param_class(self) -> type | None:
        """The declared ``attrs`` parameter class, imported if lazy; None when there is none.

        Parameter classes live in light modules (attrs only), so reading one
        never imports torch.
        """
        params = self.params
        if isinstance(params, str):
            params = _import_target(params, self, "parameter class")
        if isinstance(params, type):
            if not attrs.has(params):
                raise PluginError(f"{singular(self.kind)} {self.name!r} from plugin {self.plugin!r}: params "
                                  f"{params.__qualname__} is not an attrs class")
            return params
        return None

    def parameters(self) -> dict[str, Any]:
        """Declared parameters, or those read from the factory's signature.

        Values are the defaults; a parameter without a default maps to the
        string ``"<required>"``. Reading the signature imports the factory.
        """
        cls = self.param_class()
        if cls is not None:
            from polymodal.config import toml_key

            out: dict[str, Any] = {}
            for f in attrs.fields(cls):
                if f.default is attrs.NOTHING:
                    value: Any = "<required>"
                elif isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
                    value = f.default.factory() if not f.default.takes_self else "<computed>"
                else:
                    value = f.default
                out[toml_key(f)] = value
            return out
        if isinstance(self.params, dict):
            return dict(self.params)
        sig = self._signature()
        if sig is None:
            return {}
        out = {}
        for p in sig.parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = "<required>" if p.default is p.empty else p.default
        return out

    def parameter_types(self) -> dict[str, str]:
        """TOML-facing type names of the declared parameter class (empty without one)."""
        cls = self.param_class()
        if cls is None:
            return {}
        import typing

        from polymodal.config import toml_key, type_name

        hints = typing.get_type_hints(cls)
        return {toml_key(f): type_name(hints.get(f.name, Any)) for f in attrs.fields(cls)}

    def validate_params(self, values: dict[str, Any], source: str = "<config>", path: str = "params") -> Any:
        """``values`` checked against the declared parameter class: an instance of it.

        Unknown keys get a did-you-mean and wrong types name the key and the
        expected type (a :class:`ConfigError` naming ``source`` and ``path``).
        Without a parameter class, unknown names are still rejected where the
        factory's signature shows them, and the dict comes back unchanged.
        """
        from polymodal.config import structure

        cls = self.param_class()
        if cls is not None:
            return structure(cls, values, source, path)
        unknown = self.unknown_parameters(values)
        if unknown:
            from polymodal.errors import ConfigError

            known = self.parameters()
            raise ConfigError(f"{source}: {path}.{unknown[0]}: unknown parameter of {singular(self.kind)} "
                              f"{self.name!r}{did_you_mean(unknown[0], known)}; parameters: "
                              f"{', '.join(k for k in known if k != 'input_dims') or 'none'}")
        return dict(values)

    def _signature(self) -> inspect.Signature | None:
        factory = self.load()
        if isinstance(factory, type):
            factory = factory.__init__  # type: ignore[misc]
        try:
            return inspect.signature(factory)
        except (TypeError, ValueError):
            return None

    def unknown_parameters(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` the component does not take (none when its factory takes ``**kwargs``)."""
        if self.param_class() is not None:
            known = self.parameters()
            return [n for n in names if n not in known]
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


def singular(kind: str) -> str:
    """The singular of a kind (``axes`` -> ``axis``, ``strategies`` -> ``strategy``)."""
    return "axis" if kind == "axes" else kind[:-3] + "y" if kind.endswith("ies") else kind[:-1]


def _import_target(target: str, spec: ComponentSpec, what: str) -> Any:
    """Import ``"module:attr"`` for ``spec``; a :class:`PluginError` naming the plugin otherwise."""
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
        raise PluginError(
            f"{singular(spec.kind)} {spec.name!r} from plugin {spec.plugin!r} ({spec.distribution}): "
            f"cannot import {what} {target!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return obj


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
        singular_name = singular(self.kind)
        if name in self.conflicts:
            raise ConflictError(conflict_message(singular_name, name, self.conflicts[name]))
        msg = f"unknown {singular_name} {name!r}{did_you_mean(name, self.specs)}"
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
    specs = list(specs)
    who = " and ".join(f"plugin {s.plugin!r} (distribution {s.distribution})" for s in specs)
    msg = (
        f"{singular} {name!r} is registered by {who}; disable one of them "
        f"(POLYMODAL_DISABLE_PLUGINS or [plugins] disable) or have one declare "
        f"replaces=<plugin name>"
    )
    plugins = {s.plugin for s in specs}
    for s in specs:
        others = sorted(plugins - {s.plugin})
        if s.replaces and s.replaces not in plugins and others:
            what = "the component name" if s.replaces == name else "no plugin here"
            msg += (f"; hint: plugin {s.plugin!r} declares replaces={s.replaces!r}, which is {what}: "
                    f"replaces takes the name of the plugin to override ({' or '.join(map(repr, others))}), "
                    f"as `polymodal plugins` shows it")
    return msg


class Register:
    """The ``register`` callback handed to a plugin's registration hook.

    It validates each registration at once and stamps it with the plugin and
    distribution that made it.
    """

    def __init__(self, kind: str, plugin: str, distribution: str, sink: Callable[[ComponentSpec], None],
                 api: str | None = None):
        self.kind = kind
        self.api = api
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
        params: dict[str, Any] | type | str | None = None,
        replaces: str | None = None,
        capabilities: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> None:
        where = f"plugin {self.plugin!r} registering {singular(self.kind)} {name!r}"
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
        if isinstance(params, str):
            if not _TARGET.match(params):
                raise PluginError(f"{where}: a lazy parameter class must be a 'module:Class' string, got {params!r}")
        elif isinstance(params, type):
            if not attrs.has(params):
                raise PluginError(f"{where}: params must be an attrs class, got {params.__qualname__}")
        elif params is not None and not isinstance(params, dict):
            raise PluginError(f"{where}: params must be an attrs class, its 'module:Class' string, "
                              "or (plugin API 1) a dict of name -> default")
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
            api=self.api,
        )
        self._sink(spec)
        self.registered.append(name)
