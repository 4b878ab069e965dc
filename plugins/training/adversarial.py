"""Adversarial training: attacks from the registry, mixed with clean batches.

The attack is built by name from the ``attacks`` registry (``fgsm``, ``pgd``
or a third party's), the same objects the adversarial robustness axis uses,
so training and evaluation perturb inputs in exactly the same way.
Continuous inputs (float data: images, audio, video) are perturbed in input
space inside an L-inf or L2 ball of radius ``epsilon``. For fields whose
modality normalises pixels (its description has ``mean``/``std``: images,
video) ``epsilon`` and the ``clamp`` range are in *pixel* units (so 4/255
means what it says) and the perturbed pixels stay valid; other continuous
fields (audio features) are perturbed in their own units, unclamped.
Discrete inputs (token ids) cannot be nudged, so their perturbation lives in
the space of the model's input embeddings (:meth:`PolymodalModel.input_embedding`):
a forward hook adds ``delta`` to the embedding output, within
``text_epsilon``, on real (unmasked) tokens only. The loss optimised is
``(1 - mix) * L(clean) + mix * L(adversarial)``.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from polymodal.batch import Batch, ModalityBatch
from polymodal.errors import ConfigError
from polymodal.model_api import FieldInfo, LossOutput, PolymodalModel
from polymodal.perturb import PerturbationSpace, embedding_offsets, mask_like
from polymodal.strategy import StrategyContext
from polymodal_plugins.training.strategy_params import AdversarialParams


@attrs.define
class Perturbation:
    """The result of an attack: perturbed continuous data and embedding deltas."""

    batch: Batch
    #: field -> delta added to that field's input-embedding output ``[B, T, E]``.
    embedding_deltas: dict[str, torch.Tensor] = attrs.field(factory=dict)


def pixel_stats(info: FieldInfo | None, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-channel (mean, std) broadcastable to ``data`` when its modality normalises pixels."""
    if info is None:
        return None
    mean, std = info.params.get("mean"), info.params.get("std")
    if not (isinstance(mean, (list, tuple)) and isinstance(std, (list, tuple)) and len(mean) == len(std)):
        return None
    c = len(mean)
    if data.dim() < 4 or data.shape[-3] != c:
        return None
    shape = [1] * data.dim()
    shape[-3] = c
    m = torch.tensor(mean, dtype=data.dtype, device=data.device).view(shape)
    sd = torch.tensor(std, dtype=data.dtype, device=data.device).view(shape)
    return m, sd


def build_attack(cfg: AdversarialParams, plugins: Any) -> Any:
    """The registered attack ``cfg.attack``, given the options it declares it takes."""
    if plugins is None:
        from polymodal import get_plugins

        plugins = get_plugins()
    spec = plugins.get("attacks", cfg.attack)
    known = spec.parameters()
    kwargs: dict[str, Any] = {"norm": cfg.norm}
    if "steps" in known:
        kwargs["steps"] = cfg.steps
    if "random_start" in known:
        kwargs["random_start"] = cfg.random_start
    if "step_size" in known and cfg.step_size is not None and cfg.epsilon > 0:
        kwargs["step_size"] = cfg.step_size / cfg.epsilon  # attacks take it relative to epsilon
    try:
        return spec.build(**{k: v for k, v in kwargs.items() if k in known or k == "norm"})
    except TypeError as exc:
        raise ConfigError(f"train.strategy_params.attack: attack {cfg.attack!r}: {exc}") from None


class AdversarialAttack:
    """Perturb a batch with a registered ``attack`` on the model's loss, within ``cfg``'s budgets.

    ``fields`` (the data description) tells which continuous fields are
    normalised pixels, so epsilon and clamping happen in pixel units.
    """

    def __init__(self, cfg: AdversarialParams, attack: Any, generator: torch.Generator | None = None,
                 fields: dict[str, FieldInfo] | None = None):
        self.cfg = cfg
        self.attack = attack
        self.generator = generator
        self.field_info = dict(fields or {})

    def fields(self, model: PolymodalModel, batch: Batch) -> list[str]:
        wanted = list(self.cfg.fields) if self.cfg.fields is not None else list(model.input_fields)
        for f in wanted:
            if f not in model.input_fields:
                raise ConfigError(f"train.strategy_params.fields: model has no input field {f!r} "
                                  f"(fields: {', '.join(model.input_fields)})")
        return [f for f in wanted if f in batch.inputs]

    def perturb(self, model: PolymodalModel, batch: Batch) -> Perturbation:
        cfg = self.cfg
        spaces: dict[str, PerturbationSpace] = {}
        stds: dict[str, torch.Tensor | None] = {}
        discrete: list[str] = []
        # The attack's epsilon is the continuous one; embedding spaces scale it to text_epsilon.
        base = cfg.epsilon if cfg.epsilon > 0 else cfg.text_epsilon
        for f in self.fields(model, batch):
            mb = batch.inputs[f]
            if mb.data.is_floating_point():
                if cfg.epsilon == 0:
                    continue
                stat = pixel_stats(self.field_info.get(f), mb.data)
                lower = upper = None
                if stat is not None and cfg.clamp is not None:
                    pixels = mb.data * stat[1] + stat[0]
                    lower, upper = cfg.clamp[0] - pixels, cfg.clamp[1] - pixels
                spaces[f] = PerturbationSpace(mb.data.shape, 1.0, mask_like(mb, mb.data), lower, upper)
                stds[f] = stat[1] if stat is not None else None
            else:
                emb = model.input_embedding(f)
                if emb is None:
                    raise ConfigError(f"train.strategy_params: field {f!r} is discrete and its encoder has no "
                                      "nn.Embedding to perturb; leave it out of train.strategy_params.fields")
                if cfg.text_epsilon == 0:
                    continue
                shape = torch.Size((*mb.data.shape[:2], emb.embedding_dim))
                spaces[f] = PerturbationSpace(shape, cfg.text_epsilon / base,
                                              mask_like(mb, torch.empty(shape)).to(mb.data.device))
                discrete.append(f)
        if not spaces:
            return Perturbation(batch)

        def apply(deltas: dict[str, torch.Tensor]) -> Batch:
            inputs = dict(batch.inputs)
            for f, std in stds.items():
                mb = inputs[f]
                d = deltas[f]
                inputs[f] = ModalityBatch(mb.data + (d / std if std is not None else d), mb.mask, mb.meta)
            return Batch(inputs, batch.targets, batch.ids)

        def loss_fn(deltas: dict[str, torch.Tensor]) -> torch.Tensor:
            with embedding_offsets(model, {f: deltas[f] for f in discrete}):
                return model.loss(apply(deltas))[0]

        was_training = model.training
        deltas = self.attack(loss_fn, spaces, epsilon=base, generator=self.generator,
                             device=next(iter(batch.inputs.values())).data.device)
        model.train(was_training)
        deltas = {f: d.detach() for f, d in deltas.items()}
        return Perturbation(apply(deltas), {f: deltas[f] for f in discrete})


class AdversarialStrategy:
    """Mix of clean and adversarial losses on every batch."""

    name = "adversarial"

    def __init__(self, params: AdversarialParams, ctx: StrategyContext):
        gen = torch.Generator()
        gen.manual_seed(ctx.seed + 7919)
        self.cfg = params
        self.attack = AdversarialAttack(params, build_attack(params, ctx.plugins), gen, ctx.fields)

    def begin_epoch(self, model: PolymodalModel, epoch: int, optimizer: torch.optim.Optimizer) -> str:
        return "adversarial"

    def loss(self, model: PolymodalModel, batch: Batch) -> LossOutput:
        pert = self.attack.perturb(model, batch)
        clean_loss, logs = model.loss(batch) if self.cfg.mix < 1.0 else (None, {})
        with embedding_offsets(model, pert.embedding_deltas):
            adv_loss, adv_logs = model.loss(pert.batch)
        loss = adv_loss if clean_loss is None else (1 - self.cfg.mix) * clean_loss + self.cfg.mix * adv_loss
        out = dict(logs)
        out.update({f"adv_{k}": v for k, v in adv_logs.items()})
        out["loss"] = float(loss.detach())
        return loss, out

    def state(self) -> dict[str, torch.Tensor]:
        return {"generator": self.attack.generator.get_state()} if self.attack.generator is not None else {}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        if "generator" in state and self.attack.generator is not None:
            self.attack.generator.set_state(state["generator"])
