"""The experiment file: what to train, on what, and how.

An experiment TOML loads with :func:`load_experiment` (a thin wrapper over
:func:`polymodal.config.load`) into :class:`ExperimentConfig`. Every table is
a typed ``attrs`` class, so a wrong key or type is a :class:`ConfigError`
naming the file and the dotted key path, with a did-you-mean. Nothing here
imports torch: the CLI validates a config before paying for that import.

A complete example::

    [data]
    dataset = "shapes"
    params = { size = 32 }
    batch_size = 32

    [model]
    name = "fusion-classifier"
    fusion = "concat"                  # one word swaps the fusion strategy
    fusion_params = { proj_dim = 64 }
    target = "label"

    [model.encoders.image]
    name = "cnn"
    params = { width = 32 }

    [model.encoders.text]
    name = "text-transformer"

    [train]
    strategy = "joint"                 # a registered strategy: `polymodal list strategies`
    epochs = 3
    seed = 0

    [train.optimizer]
    name = "adamw"
    lr = 1e-3

The key of each ``[model.encoders.<field>]`` table is an *input field* of the
dataset (``image``, ``text``, ``text_zh`` ...). Its modality defaults to the
field name up to the first underscore (``text_zh`` -> ``text``), so two
languages of text are two fields of one modality.
"""

from __future__ import annotations

import math

import warnings
from pathlib import Path
from typing import Any, Literal

import attrs

from polymodal.config import PluginsSection, apply_overrides, load_toml, structure, toml_key
from polymodal.errors import ConfigError, did_you_mean

def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not math.isfinite(value) or value <= 0):  # nan <= 0 is False: check finiteness
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _no_split(value: Any) -> Any:
    """``val_split = false`` (TOML has no null), ``""`` or None: no such split, kept as ``""``.

    ``""`` rather than None so that the choice survives :func:`to_dict`
    (which drops None, and reloading would then bring back the default).
    """
    return "" if value is False or value is None else value


def _split_table(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        from polymodal.splits import parse_split

        try:
            parse_split(value, "split")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


@attrs.frozen
class DataConfig:
    """``[data]``: the dataset plugin, its splits and how batches are made.

    ``val_split = false`` (or ``test_split = false``) runs without that split.
    ``split = { train = 0.8, val = 0.1, test = 0.1, seed = 0 }`` reads the
    dataset once and makes seeded splits stratified by the model's target
    (see :mod:`polymodal.splits`); a split it does not name is not used.
    """

    dataset: str
    params: dict[str, Any] = attrs.field(factory=dict)
    #: Folder the dataset reads from / generates into; ``None`` lets the dataset choose.
    root: str | None = None
    train_split: str = "train"
    val_split: str | Literal[False] | None = attrs.field(default="val", converter=_no_split)
    test_split: str | Literal[False] | None = attrs.field(default="test", converter=_no_split)
    #: Make the splits here instead of asking the dataset for them: fractions per split and a seed.
    split: dict[str, Any] | None = attrs.field(default=None, validator=_split_table)
    batch_size: int = attrs.field(default=32, validator=_positive)
    eval_batch_size: int | None = attrs.field(default=None, validator=_positive)
    workers: int = attrs.field(default=0, validator=_non_negative)
    #: Use only the first ``limit`` samples of every split (quick runs).
    limit: int | None = attrs.field(default=None, validator=_positive)
    shuffle: bool = True
    drop_last: bool = False
    #: Modality parameters per field (or per modality kind), e.g. ``{ image = { size = 32 } }``.
    modalities: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: Input fields to load; default: those the model has encoders for.
    fields: list[str] | None = None


@attrs.frozen
class EncoderConfig:
    """``[model.encoders.<field>]``: the encoder of one input field."""

    name: str
    params: dict[str, Any] = attrs.field(factory=dict)
    #: Modality plugin of the field; default: the field name up to the first ``_``.
    modality: str | None = None
    #: Load these encoder weights (a safetensors file) after building.
    weights: str | None = None
    #: Keep the encoder frozen for the whole run (e.g. a pretrained text tower).
    frozen: bool = False


@attrs.frozen
class HeadConfig:
    """``[model.head]``: the classification head on top of the fused vector."""

    hidden: int = attrs.field(default=0, validator=_non_negative)
    dropout: float = 0.0
    layers: int = attrs.field(default=1, validator=_positive)


@attrs.frozen
class ModelConfig:
    """``[model]``: which model plugin, with which encoders and fusion.

    Only what models share is typed here. Everything else a model needs goes
    in ``params`` and is checked against the parameter class the model
    declares (``polymodal info model <name>`` lists it) when the suite is
    validated, before anything trains.
    """

    name: str
    encoders: dict[str, EncoderConfig] = attrs.field(factory=dict)
    #: Fusion plugin of models that fuse fields (those whose spec is tagged ``fusion``).
    fusion: str = "concat"
    fusion_params: dict[str, Any] = attrs.field(factory=dict)
    head: HeadConfig = attrs.field(factory=HeadConfig)
    #: The target key classifiers predict.
    target: str = "label"
    #: Number of classes; default: read from the dataset.
    num_classes: int | None = attrs.field(default=None, validator=_positive)
    #: Model-specific parameters, checked against the model's declared parameter class.
    params: dict[str, Any] = attrs.field(factory=dict)
    #: Plugin API 1 top-level keys (``embed_dim``, ``temperature``, ``learn_temperature``, ``pair``,
    #: ``lambda``) moved here by the loader; used where the model declares them. Not written by hand.
    legacy_params: dict[str, Any] = attrs.field(factory=dict)

    def modality_of(self, field: str) -> str:
        enc = self.encoders.get(field)
        if enc is not None and enc.modality:
            return enc.modality
        return field.split("_", 1)[0]


@attrs.frozen
class OptimizerConfig:
    """``[train.optimizer]``."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = attrs.field(default=1e-3, validator=_positive)
    weight_decay: float = attrs.field(default=0.01, validator=_non_negative)
    momentum: float = 0.9
    betas: list[float] = attrs.field(factory=lambda: [0.9, 0.999])


@attrs.frozen
class ScheduleConfig:
    """``[train.schedule]``: learning-rate schedule over the optimiser steps."""

    name: Literal["constant", "cosine", "linear", "step"] = "constant"
    warmup_steps: int = attrs.field(default=0, validator=_non_negative)
    #: For ``step``: multiply the rate by ``gamma`` every ``step_size`` steps.
    step_size: int = attrs.field(default=1000, validator=_positive)
    gamma: float = 0.1
    #: Floor of cosine/linear decay as a fraction of the peak rate.
    min_lr_ratio: float = attrs.field(default=0.0, validator=_non_negative)


@attrs.frozen
class TrainConfig:
    """``[train]``: strategy, length, optimisation and reproducibility.

    ``strategy`` names a registered training strategy; its options go in
    ``strategy_params`` and are checked against the strategy's declared
    parameter class when the suite is validated (``polymodal info strategy
    <name>`` lists them).
    """

    strategy: str = "joint"
    #: Options of the chosen strategy (``[train.strategy_params]``).
    strategy_params: dict[str, Any] = attrs.field(factory=dict)
    epochs: int = attrs.field(default=1, validator=_non_negative)
    #: Stop after this many optimiser steps in total (None: run all epochs).
    max_steps: int | None = attrs.field(default=None, validator=_positive)
    optimizer: OptimizerConfig = attrs.field(factory=OptimizerConfig)
    schedule: ScheduleConfig = attrs.field(factory=ScheduleConfig)
    grad_clip: float | None = attrs.field(default=1.0, validator=_positive)
    #: Mixed precision: "auto" uses it where the device supports it (CUDA).
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    seed: int = 0
    device: str = "auto"
    #: Write a resumable checkpoint every N steps too (0: only at epoch ends).
    checkpoint_every: int = attrs.field(default=0, validator=_non_negative)
    #: Evaluate on the validation split at every epoch end.
    evaluate: bool = True
    #: Torch intra-op threads (None: torch's default).
    threads: int | None = attrs.field(default=None, validator=_positive)


@attrs.frozen
class ExperimentConfig:
    """A whole experiment file."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig = attrs.field(factory=TrainConfig)
    plugins: PluginsSection = attrs.field(factory=PluginsSection)
    #: Free-form name used for output folders and result rows.
    name: str = "experiment"


#: Keys that plugin API 1 typed on ``[model]`` and that now belong to the models that use them.
MOVED_MODEL_KEYS: tuple[str, ...] = ("embed_dim", "temperature", "learn_temperature", "pair", "lambda")


#: attrs field metadata key: this parameter was a top-level ``[model]`` key in plugin API 1, so
#: old files that set it there still reach the model (``attrs.field(metadata={MOVED_FROM_MODEL: True})``).
MOVED_FROM_MODEL = "polymodal.moved_from_model"


def _moved_model_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Plugin API 1 files: model-specific ``[model]`` keys move to ``legacy_params`` with a warning.

    Before, these keys were typed in core and ignored by models that did not
    use them; now each model declares them in its own parameter class. The
    model reads them from ``legacy_params`` when it declares them (an
    explicit ``model.params`` entry wins), and other models still ignore them.
    """
    model = data.get("model")
    if not isinstance(model, dict):
        return data
    moved = {k: model[k] for k in (*MOVED_MODEL_KEYS, "lambda_") if k in model}
    if not moved:
        return data
    if "lambda" in moved and "lambda_" in moved:
        raise ConfigError(f"{source}: model.lambda: given twice (as 'lambda' and 'lambda_')")
    if "lambda_" in moved:
        moved["lambda"] = moved.pop("lambda_")
    warnings.warn(
        f"{source}: model.{', model.'.join(moved)}: deprecated (polymodal plugin API 2): move "
        f"{'it' if len(moved) == 1 else 'them'} into model.params (e.g. params = {{ {next(iter(moved))} = ... }})",
        DeprecationWarning, stacklevel=3)
    rest = {k: v for k, v in model.items() if k not in (*MOVED_MODEL_KEYS, "lambda_")}
    return {**data, "model": {**rest, "legacy_params": {**moved, **rest.get("legacy_params", {})}}}


def model_params(spec: Any, config: ModelConfig, source: str = "<model>") -> Any:
    """``config.params`` checked against model ``spec``'s parameter class: an instance of it.

    Plugin API 1 keys from ``legacy_params`` fill the parameters the model
    marks with :data:`MOVED_FROM_MODEL` (``params`` wins; other models ignore
    them, as they did); models without a parameter class get the
    plain ``params`` dict back, after any unknown name their factory shows.
    """
    cls = spec.param_class()
    values = dict(config.params)
    if cls is not None:
        declared = {toml_key(f) for f in attrs.fields(cls) if f.metadata.get(MOVED_FROM_MODEL)}
        values = {**{k: v for k, v in config.legacy_params.items() if k in declared}, **values}
        return spec.validate_params(values, source, "model.params")
    return values


#: The option tables plugin API 1 had under ``[train]`` (one per built-in strategy); old
#: checkpoints and resolved configs carry all of them, whichever strategy ran.
API1_STRATEGY_TABLES: frozenset[str] = frozenset({"adversarial", "staged"})


def _strategy_table(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Plugin API 1 files: ``[train.<strategy>]`` becomes ``[train.strategy_params]``.

    Before strategies were a registered kind, each one's options had their
    own table under ``[train]``. The table named after the chosen strategy
    is still read, with a deprecation warning; a table for a strategy that
    is not chosen was ignored before and is an error now, saying what to do.
    """
    train = data.get("train")
    if not isinstance(train, dict):
        return data
    known = {f.name for f in attrs.fields(TrainConfig)}
    legacy = [k for k, v in train.items() if k not in known and isinstance(v, dict)]
    if not legacy:
        return data
    chosen = train.get("strategy", "joint")
    train = dict(train)
    for key in list(legacy):
        if key != chosen:
            if key in API1_STRATEGY_TABLES:
                # API 1 wrote every strategy's table into checkpoints and resolved configs; it applied
                # only when that strategy was chosen, so it is dropped, as it was ignored then.
                warnings.warn(f"{source}: [train.{key}] is ignored (it applied only with train.strategy = "
                              f"{key!r}); remove it (polymodal plugin API 2: options go in "
                              "[train.strategy_params])", DeprecationWarning, stacklevel=3)
                del train[key]
                continue
            if did_you_mean(key, known):
                continue  # a typo of a real key: the usual unknown-key error, with its did-you-mean
            raise ConfigError(
                f"{source}: train.{key}: strategy options now go in [train.strategy_params] and apply to the "
                f"chosen strategy ({chosen!r}); remove [train.{key}], or set train.strategy = {key!r} and "
                f"rename the table to [train.strategy_params]")
        if train.get("strategy_params"):
            raise ConfigError(f"{source}: train.{key}: given together with train.strategy_params; keep only "
                              "[train.strategy_params]")
        warnings.warn(f"{source}: [train.{key}] is deprecated (polymodal plugin API 2): rename it to "
                      f"[train.strategy_params]", DeprecationWarning, stacklevel=3)
        train["strategy_params"] = train.pop(key)
    return {**data, "train": train}


def experiment_from_dict(data: dict[str, Any], source: str = "<experiment>") -> ExperimentConfig:
    """Validate a parsed experiment table."""
    return structure(ExperimentConfig, _strategy_table(_moved_model_keys(data, source), source), source)


def load_experiment_dict(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The parsed TOML of an experiment with ``--set`` overrides applied (validated)."""
    data = apply_overrides(load_toml(path), overrides)
    experiment_from_dict(data, str(path))
    return data


def load_experiment(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Load and validate an experiment file, ``--set key.path=value`` applied first."""
    return experiment_from_dict(apply_overrides(load_toml(path), overrides), str(path))


def to_dict(config: Any) -> Any:
    """An attrs config as plain TOML-able data (fields written under their aliases)."""
    if attrs.has(type(config)):
        out = {}
        for f in attrs.fields(type(config)):
            value = getattr(config, f.name)
            if value is None or (f.name == "legacy_params" and not value):
                continue
            out[toml_key(f)] = to_dict(value)
        return out
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    return config


def require(condition: bool, source: str, key: str, message: str) -> None:
    """Raise a :class:`ConfigError` naming ``key`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{source}: {key}: {message}")
