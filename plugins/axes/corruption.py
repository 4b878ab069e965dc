"""Corruptions for the ``robustness.noise`` axis, looked up in the ``corruptions`` registry.

A corruption is a small function ``fn(raw, severity, rng) -> raw`` applied to
one *raw* sample value (what a dataset yields, after the modality's ``load``)
before any preprocessing, so a corruption means the same thing whatever
encoder or normalisation the model uses. Severity runs 1..5; each function
looks its strength up in a 5-entry table.

Corruptions are a registered kind (hook ``register_corruptions``). A spec's
``tags`` name the raw formats it accepts (a modality's ``raw_format``
trait), so a third-party modality reuses any corruption of its format or
registers its own. Registered names are unique (``rgb.blur``); suites and
result rows use the short name after the format prefix (``blur``). A spec
also tagged ``on_request`` runs only where a suite names it (text
``paraphrase`` wraps a *question* in prompt templates, which means nothing
for a caption), never among a field's default corruptions.

Determinism: :func:`sample_rng` derives the generator from ``(seed, sample
id, field, corruption)`` but *not* the severity. Every severity of a sample
therefore draws the same random numbers and only scales them (the same noise
pattern, larger; the same dropped-word draws against a higher threshold), so
damage grows monotonically with severity instead of being reshuffled.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from polymodal.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from polymodal import ComponentSpec, Plugins

SEVERITIES = (1, 2, 3, 4, 5)
#: Pseudo-corruption: the modality is absent (``None`` value -> all-false mask row).
MISSING = "missing"
#: The tag of a corruption that runs only when a suite names it (see the module docs).
ON_REQUEST = "on_request"

CorruptionFn = Callable[[Any, int, np.random.Generator], Any]


@attrs.frozen
class Corruption:
    """A registered corruption: the raw format it was chosen for, its short name, function and description."""

    raw_format: str
    name: str
    fn: CorruptionFn
    description: str

    def __call__(self, raw: Any, severity: int, rng: np.random.Generator) -> Any:
        return self.fn(raw, check_severity(severity), rng)


def short_name(registered: str, raw_format: str = "") -> str:
    """The name suites and rows use: the registered name without its ``<format>.`` prefix."""
    head, dot, tail = registered.partition(".")
    return tail if dot and (head == raw_format or not raw_format) else registered


def _specs(raw_format: str, plugins: Plugins | None) -> dict[str, ComponentSpec]:
    """Short name -> spec of every corruption registered for ``raw_format``."""
    if plugins is None:
        from polymodal import get_plugins

        plugins = get_plugins()
    out: dict[str, ComponentSpec] = {}
    for spec in plugins.list("corruptions"):
        if raw_format and raw_format in spec.tags:
            short = short_name(spec.name, raw_format)
            if short in out:
                raise ConfigError(f"corruptions {out[short].name!r} and {spec.name!r} both apply to raw format "
                                  f"{raw_format!r} under the name {short!r}; disable one of their plugins")
            out[short] = spec
    return out


def available(raw_format: str, plugins: Plugins | None = None) -> list[str]:
    """Short names of the default corruptions for ``raw_format`` (without ``missing`` and ``on_request`` ones)."""
    return sorted(name for name, spec in _specs(raw_format, plugins).items() if ON_REQUEST not in spec.tags)


def get_corruption(raw_format: str, name: str, where: str = "corruptions", plugins: Plugins | None = None) -> Corruption:
    """The corruption ``name`` for ``raw_format``; a :class:`ConfigError` with a did-you-mean otherwise."""
    specs = _specs(raw_format, plugins)
    spec = specs.get(name)
    if spec is None:
        names = sorted(specs) + [MISSING]
        raise ConfigError(f"{where}: no corruption {name!r} for raw format {raw_format!r}"
                          f"{did_you_mean(name, names)}; registered for it: {', '.join(names)}")
    return Corruption(raw_format, name, spec.load(), spec.description)


def check_severity(severity: int) -> int:
    if int(severity) != severity or severity not in SEVERITIES:
        raise ConfigError(f"severity must be an integer in 1..5, got {severity!r}")
    return int(severity)


def level(table: Sequence[float], severity: int) -> float:
    """The strength for ``severity`` from a 5-entry table."""
    return float(table[check_severity(severity) - 1])


def sample_rng(seed: int, sample_id: Any, field: str, name: str) -> np.random.Generator:
    """The generator for one (sample, field, corruption): independent of severity (see module docs)."""
    key = f"{sample_id}\x00{field}\x00{name}".encode()
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key), len(key)])


def missing_drops(severity: int, rng: np.random.Generator) -> bool:
    """Whether the ``missing`` corruption removes the modality: probability severity/5 (all at 5)."""
    return bool(rng.random() < level((0.2, 0.4, 0.6, 0.8, 1.0), severity))
