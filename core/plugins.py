"""Building the plugin manager: discovery, isolation, allow/deny lists, conflicts.

:func:`build_plugin_manager` is a plain function so that tests (and programs
that want two configurations at once) build fresh managers with exactly the
plugins they want. Every entry point of group ``polymodal`` loads inside its
own guard: one broken plugin is reported and the rest keep working, unless
strict mode is on.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import sys
import traceback
import warnings
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import attrs
import pluggy

from polymodal import hookspecs
from polymodal.compat import BRIDGED_MAJORS, deprecation, incompatibility
from polymodal.errors import PluginError, did_you_mean
from polymodal.registry import KINDS, ComponentSpec, Register, Registry, conflict_message, singular

ENTRY_POINT_GROUP = "polymodal"

#: The plugin API this core implements. A plugin declares the API it needs as
#: a module/object attribute ``POLYMODAL_API = "MAJOR.MINOR"``; it loads when
#: the major versions are equal and its minor is not newer than ours, or, for
#: an older major that :mod:`polymodal.compat` bridges, with a deprecation note.
PLUGIN_API_VERSION = "2.1"


def _split_env(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@attrs.frozen
class PluginSettings:
    """Which plugins to load. ``None`` for ``load`` means all of them.

    Names may be shell-style wildcards (``fusion.*``).
    """

    load: tuple[str, ...] | None = None
    disable: tuple[str, ...] = ()
    strict: bool = False
    trace: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, base: PluginSettings | None = None) -> PluginSettings:
        """Settings from ``POLYMODAL_*`` variables layered over ``base`` (a config file's)."""
        env = os.environ if environ is None else environ
        base = base or cls()
        load = _split_env(env.get("POLYMODAL_LOAD_PLUGINS"))
        disable = _split_env(env.get("POLYMODAL_DISABLE_PLUGINS")) or []
        return cls(
            load=tuple(load) if load is not None else base.load,
            disable=tuple(dict.fromkeys([*base.disable, *disable])),
            strict=base.strict or _truthy(env.get("POLYMODAL_STRICT_PLUGINS")),
            trace=base.trace or _truthy(env.get("POLYMODAL_TRACE_PLUGINS")),
        )


@attrs.define
class PluginRecord:
    """What happened to one plugin: for ``polymodal plugins`` and for hints."""

    name: str
    distribution: str
    version: str
    status: str  # "loaded", "disabled" or "failed"
    reason: str = ""
    module: str = ""
    hooks: list[str] = attrs.field(factory=list)
    registered: dict[str, list[str]] = attrs.field(factory=dict)
    detail: str = attrs.field(default="", repr=False)  # the traceback of a failure
    #: The plugin API the plugin declares (``POLYMODAL_API``); None when it declares none.
    api: str | None = None
    #: Deprecation notes (e.g. loaded through the compatibility layer of an older API).
    notes: list[str] = attrs.field(factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "module": self.module,
            "hooks": self.hooks,
            "registered": self.registered,
            "api": self.api,
            "notes": self.notes,
        }


@attrs.define
class Plugins:
    """A loaded plugin manager with its registries and per-plugin records."""

    pm: pluggy.PluginManager
    settings: PluginSettings
    records: dict[str, PluginRecord]
    registries: dict[str, Registry]

    def registry(self, kind: str) -> Registry:
        from polymodal.registry import kind_of

        return self.registries[kind_of(kind)]

    def get(self, kind: str, name: str) -> ComponentSpec:
        """The spec of ``name``; an error with did-you-mean and plugin hints otherwise."""
        return self.registry(kind).get(name)

    def build(self, kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(kind, name).build(*args, **kwargs)

    def list(self, kind: str, pattern: str | None = None) -> list[ComponentSpec]:
        return self.registry(kind).list(pattern)

    def failed(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.status == "failed"]

    def conflicts(self) -> list[str]:
        out = []
        for kind, reg in self.registries.items():
            out += [conflict_message(singular(kind), n, specs) for n, specs in sorted(reg.conflicts.items())]
        return out


def _unshadow(ep: metadata.EntryPoint, obj: Any) -> Any:
    """The plugin object of ``pkg:name`` even after ``pkg.name`` was imported as a submodule.

    The documented layout puts ``concat = component(...)`` in a package's light
    ``__init__`` next to the implementation module ``concat.py``. Importing that
    submodule (which building the component does) rebinds the package
    attribute ``concat`` to the module, so every plugin manager built later in
    the process would load a module that registers nothing. When that has
    happened, the package's ``__init__`` is executed again into a private
    module object (not ``sys.modules``) and the plugin object taken from it.
    """
    import types
    from importlib import util

    if not (isinstance(obj, types.ModuleType) and ep.attr and obj.__name__ == f"{ep.module}.{ep.attr}"):
        return obj
    spec = util.find_spec(ep.module)
    if spec is None or spec.loader is None:
        return obj
    fresh = util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    value = getattr(fresh, ep.attr, obj)
    return obj if isinstance(value, types.ModuleType) else value


def _api_problem(obj: Any) -> str | None:
    wanted = getattr(obj, "POLYMODAL_API", None)
    if wanted is None:
        return None
    try:
        w_major, w_minor = (int(x) for x in str(wanted).split(".")[:2])
    except ValueError:
        return f"declares POLYMODAL_API={wanted!r}; expected 'MAJOR.MINOR'"
    major, minor = (int(x) for x in PLUGIN_API_VERSION.split("."))
    if w_major in BRIDGED_MAJORS and w_minor <= BRIDGED_MAJORS[w_major]:
        return None
    if w_major != major or w_minor > minor:
        return (
            f"needs polymodal plugin API {wanted}, but the installed polymodal "
            f"provides API {PLUGIN_API_VERSION}; upgrade polymodal or install an older plugin version"
        )
    return None


def _declared_api(obj: Any) -> str | None:
    wanted = getattr(obj, "POLYMODAL_API", None)
    return None if wanted is None else str(wanted)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _hook_names() -> list[str]:
    return [f"register_{k}" for k in KINDS]


def build_plugin_manager(
    settings: PluginSettings | None = None,
    *,
    entry_points: bool = True,
    extra_plugins: Mapping[str, Any] | None = None,
) -> Plugins:
    """Discover, load and register plugins; return the populated registries.

    ``entry_points=False`` skips discovery (tests use ``extra_plugins``, a
    mapping of plugin name to module or object, to pick exactly what loads).
    Failures are recorded per plugin; with ``settings.strict`` the first one
    raises :class:`PluginError`. Safe to call any number of times.
    """
    settings = settings if settings is not None else PluginSettings.from_env()
    pm = pluggy.PluginManager("polymodal")
    pm.add_hookspecs(hookspecs)
    if settings.trace:
        def before(hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
            print(f"polymodal trace: {hook_name} -> {', '.join(i.plugin_name for i in impls)}", file=sys.stderr)

        def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
            exc = outcome.exception
            print(f"polymodal trace: {hook_name} done" + (f" with {type(exc).__name__}: {exc}" if exc else ""), file=sys.stderr)

        pm.add_hookcall_monitoring(before, after)

    records: dict[str, PluginRecord] = {}
    candidates: list[tuple[str, str, str, Any]] = []  # name, dist, version, loader
    if entry_points:
        # The entry points of one distribution share its object; ``dist.name`` and ``dist.version`` parse
        # its METADATA anew on every access, which cost ~0.4 s per CLI call, so read each one once.
        dists: dict[int, tuple[str, str]] = {}
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.dist is not None and id(ep.dist) not in dists:
                meta = ep.dist.metadata
                dists[id(ep.dist)] = (meta["Name"], meta["Version"])
            dist, version = dists[id(ep.dist)] if ep.dist is not None else ("?", "?")
            if ep.name in records or any(c[0] == ep.name for c in candidates):
                other = next(c for c in candidates if c[0] == ep.name)
                raise PluginError(
                    f"two entry points are named {ep.name!r}: in distributions {other[1]} and {dist}; "
                    "uninstall or disable one"
                )
            candidates.append((ep.name, dist, version, ep))
    for name, obj in (extra_plugins or {}).items():
        candidates.append((name, "<in-process>", "", obj))

    all_names = [c[0] for c in candidates]
    if settings.load is not None:
        for wanted in settings.load:
            if not any(fnmatch.fnmatchcase(n, wanted) for n in all_names):
                raise PluginError(
                    f"POLYMODAL_LOAD_PLUGINS names {wanted!r}, which is not an installed plugin"
                    f"{did_you_mean(wanted, all_names)}"
                )

    def fail(rec: PluginRecord, reason: str, detail: str = "") -> None:
        rec.status, rec.reason, rec.detail = "failed", reason, detail
        if settings.strict:
            raise PluginError(f"plugin {rec.name!r} ({rec.distribution}) failed: {reason}")

    loaded: list[tuple[PluginRecord, Any]] = []
    for name, dist, version, loader in candidates:
        rec = PluginRecord(name=name, distribution=dist, version=version, status="loaded")
        records[name] = rec
        if settings.load is not None and not _matches(name, settings.load):
            rec.status, rec.reason = "disabled", "not listed in POLYMODAL_LOAD_PLUGINS / [plugins] load"
            continue
        if _matches(name, settings.disable):
            rec.status, rec.reason = "disabled", "listed in POLYMODAL_DISABLE_PLUGINS / [plugins] disable"
            continue
        if isinstance(loader, metadata.EntryPoint):
            rec.module = loader.value
            try:
                obj = _unshadow(loader, loader.load())
            except Exception as exc:  # noqa: BLE001 - isolating plugins is the point
                fail(rec, f"error importing plugin {name!r} ({loader.value}): {type(exc).__name__}: {exc}",
                     traceback.format_exc())
                continue
            if loader.attr and inspect.ismodule(obj):
                # ``pkg:name`` where ``pkg.name`` is also a submodule: importing the
                # submodule replaced the plugin object on the package.
                fail(rec, f"entry point {loader.value!r} resolves to the module {obj.__name__!r}, not a plugin "
                          f"object: a submodule of the same name shadows the attribute; rename one of them")
                continue
        else:
            obj = loader
            rec.module = getattr(obj, "__name__", type(obj).__name__)
        problem = _api_problem(obj)
        rec.api = _declared_api(obj)
        if problem is None and isinstance(loader, metadata.EntryPoint):
            problem = _api_problem(sys.modules.get(loader.module))
            rec.api = rec.api or _declared_api(sys.modules.get(loader.module))
        if problem:
            fail(rec, problem)
            continue
        unknown = [
            attr for attr in dir(obj)
            if attr.startswith("register_") and attr not in _hook_names()
            and getattr(getattr(obj, attr, None), "polymodal_impl", None) is not None
        ]
        if unknown:
            fail(rec, f"implements unknown hook {unknown[0]!r}{did_you_mean(unknown[0], _hook_names())}")
            continue
        try:
            pm.register(obj, name=name)
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors
            fail(rec, f"invalid hook implementation: {exc}", traceback.format_exc())
            continue
        rec.hooks = sorted(h.name for h in pm.get_hookcallers(obj) or [])
        if rec.api is not None and int(rec.api.split(".")[0]) in BRIDGED_MAJORS:
            kinds = [h.removeprefix("register_") for h in rec.hooks]
            refused = incompatibility(rec.api, kinds)
            if refused:
                pm.unregister(obj)
                fail(rec, refused)
                continue
            note = deprecation(rec.name, rec.distribution, rec.api, PLUGIN_API_VERSION, kinds)
            rec.notes.append(note)
            warnings.warn(note, DeprecationWarning, stacklevel=2)
        loaded.append((rec, obj))

    registries = {kind: Registry(kind) for kind in KINDS}
    objects = [obj for _, obj in loaded]
    for rec, obj in loaded:
        staged: list[ComponentSpec] = []
        try:
            for kind in KINDS:
                hook_name = f"register_{kind}"
                if hook_name not in rec.hooks:
                    continue
                register = Register(kind, rec.name, rec.distribution, staged.append, api=rec.api)
                caller = pm.subset_hook_caller(hook_name, remove_plugins=[o for o in objects if o is not obj])
                caller(register=register)
        except Exception as exc:  # noqa: BLE001 - a hook raising only disables its plugin
            fail(rec, f"raised in a registration hook: {type(exc).__name__}: {exc}", traceback.format_exc())
            pm.unregister(obj)
            continue
        for spec in staged:
            registries[spec.kind].add(spec)
            rec.registered.setdefault(spec.kind, []).append(spec.name)

    unavailable = {r.name: f"{r.status} ({r.reason})" for r in records.values() if r.status != "loaded"}
    for reg in registries.values():
        reg.unavailable = unavailable
    plugins = Plugins(pm=pm, settings=settings, records=records, registries=registries)
    if settings.strict and plugins.conflicts():
        raise PluginError(plugins.conflicts()[0])
    return plugins


_default: Plugins | None = None


def get_plugins(refresh: bool = False) -> Plugins:
    """The process-wide plugin manager built from the environment (cached)."""
    global _default
    if _default is None or refresh:
        _default = build_plugin_manager()
    return _default


def set_plugins(plugins: Plugins | None) -> None:
    """Replace the process-wide manager (the CLI does this after reading config)."""
    global _default
    _default = plugins
