"""The plugin API 1 compatibility layer: what changed in API 2, and the thin bridges.

A plugin declares the API it was written for (``POLYMODAL_API = "1.0"``).
Plugins of the previous major version keep loading where the change can be
bridged, with a :class:`DeprecationWarning` (and a note in ``polymodal
plugins``) naming what to change; where it cannot, the plugin is reported
as failed with a one-line reason naming the incompatible contract, and
everything else keeps working. The full old -> new table is
``docs/migration.md``.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable
from typing import Any

#: Major versions of the plugin API still loaded through this layer, with the last minor each had.
BRIDGED_MAJORS: dict[int, int] = {1: 0}

#: Per kind: what an API 1 plugin registering it should change (kinds absent here did not change).
CHANGES: dict[str, str] = {
    "axes": ("the leaderboard no longer guesses a metric's direction from its name: state it on every row with "
             "ctx.row(..., higher_is_better=...) (declared_direction(metric) for a metric built from the registry); "
             "rows without it take the direction a registered metric of that name declares, else show "
             "direction unknown, with no best marked"),
    "metrics": ("optional: to be chosen by name in a suite's [axes.<label>] metrics = [...], declare on the spec "
                "the capability whose outputs the metric scores (capabilities=['classify'], ['caption'] or "
                "['embed'] for retrieval); a metric whose figures differ in sense may declare figure_directions; "
                "a replacement of wer/cer or vqa-accuracy is what the robustness axes measure: declare "
                "capabilities=['transcribe'] / ['answer'] and a boolean higher_is_better"),
    "reporters": ("artifacts are rendered through the registered kind report_sections (polymodal list "
                  "report-sections): render folder.artifacts_of(section.artifact_kind) with each section of "
                  "polymodal.report_sections.report_sections(plugins) so plugins' artifacts appear; "
                  "polymodal.report.ARTIFACT_KINDS is gone"),
    "modalities": ("optional: polymodal data preview shows a field as its modality's traits declare "
                   "(ModalityTraits.preview = 'image', 'frames', 'audio' or 'text'; pictorial means image), no "
                   "longer by the raw value's Python type: declare preview if your raw values are pictures, "
                   "clips or audio and the modality is not pictorial"),
    "models": ("model options embed_dim, temperature, learn_temperature, pair and lambda are no longer "
               "ModelConfig fields: declare a params= attrs class on the spec and read ctx.params"),
    "fusions": ("optional: the input rules every fusion shares are public in polymodal.fusion (gather_inputs, "
                "check_input_dims; API 2.1); polymodal_plugins.fusions.inputs is deprecated"),
    "modalities": "optional: resolve_inside moved from polymodal.paths (deprecated) to polymodal.data (API 2.1)",
    "datasets": "optional: resolve_inside moved from polymodal.paths (deprecated) to polymodal.data (API 2.1)",
}

#: Per kind: why an API 1 implementation cannot work any more (the plugin is refused).
INCOMPATIBLE: dict[str, str] = {
    "trainers": ("the trainers contract changed: ExperimentConfig.train.adversarial/.staged are gone "
                 "(strategies are the registered kind 'strategies', options in train.strategy_params)"),
}

#: Old ``ModelConfig`` fields an API 1 model may read, with their API 1 defaults.
_OLD_MODEL_FIELDS: dict[str, tuple[str, Any]] = {
    "embed_dim": ("embed_dim", 128),
    "temperature": ("temperature", 0.07),
    "learn_temperature": ("learn_temperature", True),
    "pair": ("pair", None),
    "lambda_": ("lambda", 0.5),
}


#: Import paths that moved when the public API was split into tiers (docs/public-api.md): old -> new module.
MOVED_MODULES: dict[str, str] = {
    "polymodal.paths": "polymodal.data",
    "polymodal_plugins.fusions.inputs": "polymodal.fusion",
}


def moved(old: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``names`` from their new module with a :class:`DeprecationWarning`.

    Third-party plugins that imported a helper from its old module keep
    working through the 2.x series, and are told where it lives now.
    """
    new, served = MOVED_MODULES[old], frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in served:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old}.{name} moved to {new}.{name}; import it from there ({old} goes away in plugin "
                      "API 3; see docs/migration.md)", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(new), name)

    return __getattr__


def major(version: str) -> int:
    return int(str(version).split(".")[0])


def deprecation(plugin: str, distribution: str, declared: str, current: str, kinds: list[str]) -> str:
    """The one-line note for an API 1 plugin that still loads."""
    todo = "; ".join(f"{k}: {CHANGES[k]}" for k in kinds if k in CHANGES) or "no contract it uses changed"
    return (f"plugin {plugin!r} ({distribution}) declares POLYMODAL_API = {declared!r}, loaded through the "
            f"deprecated API {major(declared)} compatibility layer; to move to {current!r} ({todo}), then set "
            f"POLYMODAL_API = {current!r} (see docs/migration.md)")


def incompatibility(declared: str, kinds: list[str]) -> str | None:
    """The one-line reason an API 1 plugin cannot load, or None when every kind it registers is bridged."""
    for kind in kinds:
        if kind in INCOMPATIBLE:
            return (f"written for plugin API {declared}: its {kind} hook cannot be bridged: {INCOMPATIBLE[kind]}; "
                    "update the plugin (docs/migration.md)")
    return None


class LegacyModelConfig:
    """A ``ModelConfig`` as an API 1 model saw it: the moved fields are attributes again.

    Values come from ``params`` (API 2 files) or ``legacy_params`` (old files
    that set them on ``[model]``), else the API 1 defaults.
    """

    def __init__(self, config: Any):
        self._config = config

    def __getattr__(self, name: str) -> Any:
        if name in _OLD_MODEL_FIELDS:
            key, default = _OLD_MODEL_FIELDS[name]
            for source in (self._config.params, self._config.legacy_params):
                if key in source:
                    return source[key]
            return default
        return getattr(self._config, name)


__all__ = ["BRIDGED_MAJORS", "CHANGES", "INCOMPATIBLE", "MOVED_MODULES", "LegacyModelConfig", "deprecation",
           "incompatibility", "moved"]
