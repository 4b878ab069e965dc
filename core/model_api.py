"""The model interface: what every model plugin provides, and how it is built.

A model plugin registers (hook ``register_models``) a factory called as::

    factory(config: ModelConfig, ctx: ModelContext) -> PolymodalModel

with ``capabilities=[...]`` on the spec: open strings, declared once there.
The built-in ones are listed in :data:`CAPABILITIES` with what each asks of
the model; a plugin may introduce a new one (``transcribe``, ``answer``)
simply by declaring it on its model spec and requiring it on its axis.
:func:`build_model` copies the spec's capabilities onto the instance, so
``model.capabilities`` is the one fact every consumer reads.
``config`` is the validated ``[model]`` table (:class:`polymodal.experiment.
ModelConfig`). Model-specific options live in ``config.params``; a model
declares them as an ``attrs`` class (``params=`` on the spec, lazily as
``"module:Class"``), so unknown or ill-typed keys are rejected, with a
did-you-mean, when a suite is validated, and the model reads the validated
instance as ``ctx.params``. A model that fuses fields with ``model.fusion``
says so with the spec tag ``fusion``, so the suite check resolves the fusion
name before anything trains. ``ctx`` says
what the data looks like: the input fields with their modality and the
preprocessing facts an encoder needs (vocabulary size, image size, ...), the
targets with their number of classes, and the plugin manager to build
encoders and fusions from. Nothing about the data is hard-coded in a model.

A model is a ``torch.nn.Module`` subclassing :class:`PolymodalModel`:

``loss(batch) -> (loss, logs)``
    the training objective on one :class:`~polymodal.batch.Batch`: a scalar
    tensor and a ``dict[str, float]`` of figures for the progress bar and the
    results store. Every training strategy only ever calls this (plus
    ``unimodal_loss`` for staged pre-training), so a model trains with any
    strategy as soon as it has a loss.

and, as its capabilities require:

``classify`` -> ``predict(batch) -> Tensor [B, num_classes]`` (logits).
``embed``    -> ``embed(batch, field) -> Tensor [B, D]``, L2-normalised, for
               every field in ``embed_fields``; ``logit_scale()`` for CLIPScore.
``caption``  -> ``caption(batch, max_len=..., beam_size=...) -> list[str]``:
               greedy when ``beam_size == 1``, beam search otherwise.
``generate`` -> ``generate(batch) -> Tensor [B, C, H, W]`` with values in
               [0, 1], conditioned on the text field(s) of ``batch``.
``transcribe`` -> ``transcribe(batch) -> list[str]``: one transcript per
               sample of the model's audio field (its ``input_fields``).

Optional hooks that strategies and axes use when present:

``unimodal_loss(batch, field)``  staged training's stage 1 for one encoder.
``stage_groups()``               ``{"encoders": [...], "fusion": [...]}``
                                 parameter groups for freeze/unfreeze.
``input_embedding(field)``       the ``nn.Embedding`` whose output is
                                 perturbed for adversarial training on
                                 discrete inputs (text); the default finds the
                                 first ``nn.Embedding`` in ``encoders[field]``.
``answer_loglik(batch, replies)`` answering models: log-likelihood ``[B]`` of
                                 each reply (importance occludes it; the
                                 adversarial axis ascends its negative);
                                 ``choice_loglik(batch, options, picks)`` the
                                 same for the reply naming an option.
``differentiable_pixels``        answering models: ``True`` when gradients of
                                 ``answer_loglik`` reach the image tensors
                                 (hf-vlm: a torch twin of the processor), so
                                 ``robustness.adversarial`` may attack them.
``interpretation()``             the last call's internals for
                                 ``interpretability.attention`` (fusion
                                 attention, or per generated token maps over
                                 the image with their ``tokens``).

Checkpoints (see :mod:`polymodal.checkpoint`) store the experiment config and
``ctx.to_json()``, so a model is rebuilt from a checkpoint alone with
:func:`build_model`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import torch
from torch import nn

from polymodal.batch import Batch, Features
from polymodal.errors import ConfigError, PolymodalError

# Re-exported so that model and encoder plugins need this one module (the component API,
# docs/public-api.md): the config a factory receives, the weights mixin, and loading a
# checkpointed helper model (e.g. an axis's classifier).
from polymodal.checkpoint import load_model
from polymodal.experiment import MOVED_FROM_MODEL, HeadConfig, ModelConfig
from polymodal.weights import WeightsMixin, freeze

if TYPE_CHECKING:
    from polymodal.experiment import EncoderConfig
    from polymodal.plugins import Plugins

#: The capabilities the built-in axes know; not a closed set (see the module docs).
CAPABILITIES: frozenset[str] = frozenset({"classify", "embed", "caption", "generate", "transcribe", "answer"})
_CAPABILITY = re.compile(r"^[a-z][a-z0-9_.-]*$")

LossOutput = tuple[torch.Tensor, dict[str, float]]


@attrs.frozen
class FieldInfo:
    """One input field of the data: ``batch.inputs[name]``.

    ``params`` are facts fixed by the modality's preprocessing that an encoder
    must agree with (e.g. ``vocab_size``, ``pad_id``, ``image_size``,
    ``channels``, ``sample_rate``, ``n_mels``); they are passed to an encoder
    factory for every parameter it accepts and the config does not set.
    """

    name: str
    modality: str
    params: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class TargetInfo:
    """One target key of the data: ``batch.targets[name]``."""

    name: str
    num_classes: int | None = None
    labels: list[str] | None = None


@attrs.define
class ModelContext:
    """What a model factory needs to know besides its own config."""

    plugins: Plugins
    fields: dict[str, FieldInfo] = attrs.field(factory=dict)
    targets: dict[str, TargetInfo] = attrs.field(factory=dict)
    #: Where the config came from, for error messages.
    source: str = "<model>"
    #: ``model.params`` validated against the model's declared parameter class (an instance of
    #: it), set by :func:`build_model`; the plain dict for models that declare none.
    params: Any = None

    def field(self, name: str) -> FieldInfo:
        """The input field ``name``; a :class:`ConfigError` when the data lacks it."""
        if name in self.fields:
            return self.fields[name]
        from polymodal.errors import did_you_mean

        raise ConfigError(
            f"{self.source}: model.encoders.{name}: the dataset has no input field {name!r}"
            f"{did_you_mean(name, self.fields)}; its fields are: {', '.join(sorted(self.fields)) or 'none'}"
        )

    def num_classes(self, config: ModelConfig) -> int:
        """Classes of ``config.target``: from the config, else from the dataset."""
        if config.num_classes is not None:
            return config.num_classes
        info = self.targets.get(config.target)
        if info is not None and info.num_classes is None:
            raise ConfigError(
                f"{self.source}: model.target: target {config.target!r} has no class count (its values are not "
                f"class labels: numbers or references); set model.num_classes or choose a class target"
            )
        if info is None:
            raise ConfigError(
                f"{self.source}: model.target: the dataset has no class target {config.target!r} "
                f"(targets: {', '.join(sorted(self.targets)) or 'none'}); set model.target or model.num_classes"
            )
        return info.num_classes

    def build_encoder(self, field: str, enc: EncoderConfig) -> nn.Module:
        """Build the encoder of ``field``, filling modality facts it accepts."""
        info = self.field(field)
        spec = self.plugins.get("encoders", enc.name)
        factory = spec.load()
        params = {**_accepted(factory, info.params), **enc.params}
        try:
            module = factory(**params)
        except TypeError as exc:
            raise ConfigError(f"{self.source}: model.encoders.{field}.params: {exc}") from None
        if not isinstance(module, nn.Module) or not isinstance(getattr(module, "output_dim", None), int):
            raise PolymodalError(
                f"encoder {enc.name!r} (plugin {spec.plugin!r}) must return an nn.Module with an int output_dim"
            )
        if enc.weights:
            from polymodal.checkpoint import load_module_weights

            load_module_weights(module, enc.weights, what=f"model.encoders.{field}.weights")
        if enc.frozen:
            module.requires_grad_(False)
        return module

    def build_fusion(self, name: str, input_dims: dict[str, int], params: Mapping[str, Any]) -> nn.Module:
        """Build fusion ``name`` over ``input_dims`` (field -> feature size)."""
        spec = self.plugins.get("fusions", name)
        try:
            module = spec.build(dict(input_dims), **dict(params))
        except TypeError as exc:
            raise ConfigError(f"{self.source}: model.fusion_params: fusion {name!r}: {exc}") from None
        if not isinstance(getattr(module, "output_dim", None), int):
            raise PolymodalError(f"fusion {name!r} (plugin {spec.plugin!r}) has no int output_dim")
        return module

    def to_json(self) -> dict[str, Any]:
        """The data description, for checkpoints (the plugin manager is not stored)."""
        return {
            "fields": {k: attrs.asdict(v) for k, v in self.fields.items()},
            "targets": {k: attrs.asdict(v) for k, v in self.targets.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], plugins: Plugins, source: str = "<checkpoint>") -> ModelContext:
        return cls(
            plugins=plugins,
            fields={k: FieldInfo(**v) for k, v in data.get("fields", {}).items()},
            targets={k: TargetInfo(**v) for k, v in data.get("targets", {}).items()},
            source=source,
        )


def _accepted(factory: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that ``factory`` takes as keyword arguments."""
    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return dict(values)
    return {k: v for k, v in values.items() if k in sig.parameters}


class PolymodalModel(nn.Module):
    """Base class of model plugins (see the module docstring for the contract).

    Subclasses implement ``loss`` plus the methods their capabilities
    require. Capabilities are declared on the spec only; :func:`build_model`
    sets ``capabilities`` on the instance (the class default is empty).
    ``encoders`` (an ``nn.ModuleDict`` keyed by input field) is the
    convention strategies rely on for freezing and adversarial perturbation
    of discrete inputs.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ModelConfig, ctx: ModelContext):
        super().__init__()
        self.config = config
        self.source = ctx.source
        self.encoders = nn.ModuleDict()

    # -- what the model consumes / produces ---------------------------------
    @property
    def input_fields(self) -> tuple[str, ...]:
        """Input fields this model reads from ``batch.inputs``."""
        return tuple(self.encoders.keys())

    @property
    def embed_fields(self) -> tuple[str, ...]:
        """Fields ``embed`` accepts (``embed`` capability only)."""
        return ()

    # -- training ------------------------------------------------------------
    def loss(self, batch: Batch) -> LossOutput:
        raise NotImplementedError(f"{type(self).__name__} does not define loss()")

    def loss_and_predict(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float], torch.Tensor | None]:
        """Loss, logs and (``classify`` models, batch with the target) the logits of one batch.

        Evaluation needs both; a model whose loss already computes the logits
        overrides this to return them from the same forward pass (half the
        work). The default calls :meth:`loss` then :meth:`predict`.
        """
        loss, logs = self.loss(batch)
        wants = "classify" in self.capabilities and self.config.target in batch.targets
        return loss, logs, self.predict(batch) if wants else None

    def unimodal_loss(self, batch: Batch, field: str) -> LossOutput:
        raise PolymodalError(f"model {type(self).__name__} does not support staged training (no unimodal_loss)")

    def stage_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters split into ``encoders`` and everything else (``fusion``)."""
        enc_ids = {id(p) for p in self.encoders.parameters()}
        return {
            "encoders": list(self.encoders.parameters()),
            "fusion": [p for p in self.parameters() if id(p) not in enc_ids],
        }

    def input_embedding(self, field: str) -> nn.Embedding | None:
        """The embedding table of a discrete field, for embedding-space attacks."""
        enc = self.encoders[field] if field in self.encoders else None
        if enc is None:
            return None
        getter = getattr(enc, "get_input_embeddings", None)
        if callable(getter):
            emb = getter()
            if isinstance(emb, nn.Embedding):
                return emb
        return next((m for m in enc.modules() if isinstance(m, nn.Embedding)), None)

    # -- capabilities ----------------------------------------------------------
    def predict(self, batch: Batch) -> torch.Tensor:
        raise PolymodalError(f"model {type(self).__name__} cannot classify")

    def embed(self, batch: Batch, field: str) -> torch.Tensor:
        raise PolymodalError(f"model {type(self).__name__} cannot embed")

    def logit_scale(self) -> torch.Tensor:
        raise PolymodalError(f"model {type(self).__name__} has no similarity scale")

    def caption(self, batch: Batch, *, max_len: int = 20, beam_size: int = 1) -> list[str]:
        raise PolymodalError(f"model {type(self).__name__} cannot caption")

    def generate(self, batch: Batch) -> torch.Tensor:
        raise PolymodalError(f"model {type(self).__name__} cannot generate")

    # -- helpers for subclasses ------------------------------------------------
    def encode(self, batch: Batch, fields: tuple[str, ...] | None = None) -> dict[str, Features]:
        """Token features of each field; a field absent from the batch is an error."""
        out: dict[str, Features] = {}
        for f in fields if fields is not None else self.input_fields:
            if f not in batch.inputs:
                raise PolymodalError(
                    f"batch has no input field {f!r} that model {type(self).__name__} needs "
                    f"(batch fields: {', '.join(sorted(batch.inputs))})"
                )
            out[f] = self.encoders[f](batch.inputs[f])
        return out

    def target(self, batch: Batch, key: str | None = None) -> torch.Tensor:
        key = key or self.config.target
        if key not in batch.targets:
            raise PolymodalError(
                f"batch has no target {key!r} (targets: {', '.join(sorted(batch.targets)) or 'none'}); "
                f"set model.target"
            )
        return batch.targets[key]


def build_encoders(model: PolymodalModel, config: ModelConfig, ctx: ModelContext) -> None:
    """Fill ``model.encoders`` from ``[model.encoders.<field>]``."""
    if not config.encoders:
        raise ConfigError(f"{ctx.source}: model.encoders: model {config.name!r} needs at least one encoder table")
    for field, enc in config.encoders.items():
        model.encoders[field] = ctx.build_encoder(field, enc)


def build_model(config: ModelConfig, ctx: ModelContext) -> PolymodalModel:
    """Build the model plugin named ``config.name``, its ``model.params`` validated first (as ``ctx.params``)."""
    spec = ctx.plugins.get("models", config.name)
    bad = sorted(c for c in spec.capabilities if not isinstance(c, str) or not _CAPABILITY.match(c))
    if bad:
        raise PolymodalError(f"model {config.name!r} (plugin {spec.plugin!r}) declares malformed capabilities {bad}: "
                             "expected lower-case names such as 'classify' or 'transcribe'")
    from polymodal.compat import BRIDGED_MAJORS
    from polymodal.experiment import model_params

    ctx = attrs.evolve(ctx, params=model_params(spec, config, ctx.source))
    if spec.api is not None and spec.api.split(".")[0] in {str(m) for m in BRIDGED_MAJORS}:
        from polymodal.compat import LegacyModelConfig

        model = spec.build(LegacyModelConfig(config), ctx)  # an API 1 model reads config.embed_dim ...
    else:
        model = spec.build(config, ctx)
    if not isinstance(model, PolymodalModel):
        raise PolymodalError(
            f"model {config.name!r} (plugin {spec.plugin!r}) must return a polymodal.model_api.PolymodalModel, "
            f"got {type(model).__name__}"
        )
    # The spec is the one place a model's capabilities are declared; the instance carries them for axes.
    model.capabilities = frozenset(spec.capabilities)
    return model
