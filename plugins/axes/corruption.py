"""The corruption registry of the ``robustness.noise`` axis.

A corruption is a small function ``fn(raw, severity, rng) -> raw`` applied to
one *raw* sample value (what a dataset yields, after the modality's ``load``)
before any preprocessing, so a corruption means the same thing whatever
encoder or normalisation the model uses. Severity runs 1..5; each function
looks its strength up in a 5-entry table.

Determinism: :func:`sample_rng` derives the generator from ``(seed, sample
id, field, corruption)`` but *not* the severity. Every severity of a sample
therefore draws the same random numbers and only scales them (the same noise
pattern, larger; the same dropped-word draws against a higher threshold), so
damage grows monotonically with severity instead of being reshuffled.

Modules per modality family (``image_corruptions`` ...) register with
:func:`corruption`; the axis looks names up with :func:`get_corruption`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from polymodal.errors import ConfigError, did_you_mean

SEVERITIES = (1, 2, 3, 4, 5)
#: Pseudo-corruption: the modality is absent (``None`` value -> all-false mask row).
MISSING = "missing"

CorruptionFn = Callable[[Any, int, np.random.Generator], Any]


@attrs.frozen
class Corruption:
    """A registered corruption: its modality kind, name, function and a one-line description."""

    modality: str
    name: str
    fn: CorruptionFn
    description: str

    def __call__(self, raw: Any, severity: int, rng: np.random.Generator) -> Any:
        return self.fn(raw, check_severity(severity), rng)


_REGISTRY: dict[tuple[str, str], Corruption] = {}


def corruption(modality: str, name: str, description: str) -> Callable[[CorruptionFn], CorruptionFn]:
    """Decorator registering ``fn`` as corruption ``name`` of modality kind ``modality``."""

    def deco(fn: CorruptionFn) -> CorruptionFn:
        key = (modality, name)
        if key in _REGISTRY and _REGISTRY[key].fn is not fn:
            raise ValueError(f"corruption {modality}/{name} registered twice")
        _REGISTRY[key] = Corruption(modality, name, fn, description)
        return fn

    return deco


def _load_builtins() -> None:
    # Imported for their registrations; kept lazy so importing this module stays cheap.
    from polymodal_plugins.axes import (  # noqa: F401
        audio_corruptions,
        image_corruptions,
        text_corruptions,
        video_corruptions,
    )


def available(modality: str) -> list[str]:
    """Names of the corruptions registered for modality kind ``modality`` (without ``missing``)."""
    _load_builtins()
    return sorted(name for (kind, name) in _REGISTRY if kind == modality)


def get_corruption(modality: str, name: str, where: str = "corruptions") -> Corruption:
    """The corruption ``name`` of ``modality``; a :class:`ConfigError` with a did-you-mean otherwise."""
    _load_builtins()
    found = _REGISTRY.get((modality, name))
    if found is None:
        names = available(modality) + [MISSING]
        raise ConfigError(f"{where}: no {modality} corruption {name!r}{did_you_mean(name, names)}; "
                          f"{modality} corruptions: {', '.join(names)}")
    return found


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
