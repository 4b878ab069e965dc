"""TOML configuration into typed, validated ``attrs`` objects.

Configs are data: they are parsed with :mod:`tomllib` and nothing in them is
ever executed. :func:`structure` turns a parsed table into an ``attrs`` class,
checking every key against the class's typed fields; errors name the file,
the dotted key path and the expected type, with a did-you-mean for unknown
keys.
"""

from __future__ import annotations

import copy
import keyword
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import attrs

from polymodal.errors import ConfigError, did_you_mean

T = TypeVar("T")


#: A config or suite file larger than this is refused before it is read (``include = ["/dev/zero"]``).
MAX_TOML_BYTES = 16 * 1024 * 1024


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file (a regular file of at most :data:`MAX_TOML_BYTES`); errors name the file and position."""
    p = Path(path)
    try:
        if p.exists() and not p.is_dir() and not p.is_file():
            raise ConfigError(f"{p}: not a regular file (a device, pipe or socket); expected a TOML file")
        with p.open("rb") as fh:
            raw = fh.read(MAX_TOML_BYTES + 1)
        if len(raw) > MAX_TOML_BYTES:
            raise ConfigError(f"{p}: larger than {MAX_TOML_BYTES // (1024 * 1024)} MiB; not a config file")
        return tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level; hostile files nest thousands deep
        raise ConfigError(f"{p}: invalid TOML: arrays or tables nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text: {exc}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``key.path=value``; the value is read as TOML, else as a bare string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE")
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"--set {text!r}: empty component in key path {key!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise ConfigError(f"--set {key}: value nested too deeply") from None
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``--set`` overrides applied."""
    out = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(parts[: i + 1])} is a {type(nxt).__name__}, not a table")
            node = nxt
        node[parts[-1]] = value
    return out


def type_name(tp: Any) -> str:
    """How a type reads to someone writing TOML (``list of string``, ``table``, ``one of 'a', 'b'``)."""
    return _type_name(tp)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if attrs.has(tp):
        return "table"
    if tp is type(None):
        return "nothing"
    return getattr(tp, "__name__", str(tp))


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def err(self, path: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path or '<top level>'}: {msg}")


def _convert(tp: Any, value: Any, path: str, ctx: _Ctx) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path, ctx)
            except ConfigError as exc:
                errors.append(exc)
        raise ctx.err(path, f"expected {_type_name(tp)}, got {_describe(value)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = did_you_mean(str(value), [str(c) for c in choices]) if isinstance(value, str) else ""
            raise ctx.err(path, f"expected {_type_name(tp)}, got {value!r}{hint}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ctx.err(path, f"expected {_type_name(tp)}, got {_describe(value)}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        items = [_convert(item, v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ctx.err(path, f"expected a table, got {_describe(value)}")
        _, vt = typing.get_args(tp) or (str, Any)
        return {k: _convert(vt, v, f"{path}.{k}" if path else k, ctx) for k, v in value.items()}
    if attrs.has(tp):
        return _structure(tp, value, path, ctx)
    if tp is bool:
        if not isinstance(value, bool):
            raise ctx.err(path, f"expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.err(path, f"expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.err(path, f"expected a number, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ctx.err(path, f"expected a string, got {_describe(value)}")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ctx.err(path, f"expected a table, got {_describe(value)}")
        return value
    if tp is list:
        if not isinstance(value, list):
            raise ctx.err(path, f"expected a list, got {_describe(value)}")
        return value
    return value


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})" if not isinstance(value, (dict, list)) else names[type(value)]


def toml_key(field: attrs.Attribute) -> str:
    """The TOML key of an attrs field: a Python keyword spelled ``lambda_`` is written ``lambda``."""
    name = field.alias or field.name
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def _structure(cls: type[T], data: Any, path: str, ctx: _Ctx) -> T:
    if not isinstance(data, Mapping):
        raise ctx.err(path, f"expected a table, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    aliases = {toml_key(f): f.name for f in attrs.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else key
        if key not in aliases:
            raise ctx.err(sub, f"unknown key{did_you_mean(key, aliases)}; valid keys: {', '.join(sorted(aliases))}")
        name = aliases[key]
        kwargs[name] = _convert(hints.get(name, Any), value, sub, ctx)
    missing = [n for n, f in fields.items() if f.default is attrs.NOTHING and n not in kwargs]
    if missing:
        raise ctx.err(path, f"missing required key {missing[0]!r} ({_type_name(hints.get(missing[0], Any))})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ctx.err(path, str(exc)) from None


def structure(cls: type[T], data: Any, source: str = "<config>", path: str = "") -> T:
    """Build ``cls`` from parsed TOML, raising :class:`ConfigError` on mismatch."""
    return _structure(cls, data, path, _Ctx(source))


def load(cls: type[T], path: str | Path, overrides: Iterable[str] = ()) -> T:
    """Load a TOML file into ``cls``, applying ``--set`` overrides first."""
    data = apply_overrides(load_toml(path), overrides)
    return structure(cls, data, str(path))


@attrs.frozen
class PluginsSection:
    """The ``[plugins]`` table of a config file: same meaning as the env variables."""

    load: list[str] | None = None
    disable: list[str] = attrs.field(factory=list)
    strict: bool = False
    trace: bool = False

    def settings(self) -> Any:
        from polymodal.plugins import PluginSettings

        return PluginSettings.from_env(
            base=PluginSettings(
                load=tuple(self.load) if self.load is not None else None,
                disable=tuple(self.disable),
                strict=self.strict,
                trace=self.trace,
            )
        )


def plugin_settings_from(data: Mapping[str, Any], source: str) -> Any:
    """Plugin settings from a parsed config's ``[plugins]`` table (env wins on load)."""
    section = structure(PluginsSection, data.get("plugins", {}), source, "plugins")
    return section.settings()
