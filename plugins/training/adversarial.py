"""Adversarial training: FGSM / PGD perturbations mixed with clean batches.

Continuous inputs (float data: images, audio, video) are perturbed in input
space inside an L-inf or L2 ball of radius ``epsilon``. For fields whose
modality normalises pixels (its description has ``mean``/``std``: images,
video) ``epsilon`` and the ``clamp`` range are in *pixel* units (so 4/255
means what it says) and the perturbed pixels stay valid; other continuous
fields (audio features) are perturbed in their own units, unclamped. Discrete inputs (token ids) cannot be nudged, so their
perturbation lives in the space of the model's input embeddings
(:meth:`PolymodalModel.input_embedding`): a forward hook adds ``delta`` to
the embedding output, within ``text_epsilon``, on real (unmasked) tokens only.
The loss optimised is ``(1 - mix) * L(clean) + mix * L(adversarial)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import attrs
import torch
from torch import nn

from polymodal.batch import Batch, ModalityBatch
from polymodal.errors import ConfigError
from polymodal.experiment import AdversarialConfig
from polymodal.model_api import FieldInfo, LossOutput, PolymodalModel


@attrs.define
class Perturbation:
    """The result of an attack: perturbed continuous data and embedding deltas."""

    batch: Batch
    #: field -> delta added to that field's input-embedding output ``[B, T, E]``.
    embedding_deltas: dict[str, torch.Tensor] = attrs.field(factory=dict)


@contextlib.contextmanager
def embedding_offsets(model: PolymodalModel, deltas: dict[str, torch.Tensor]) -> Iterator[None]:
    """Add ``deltas[field]`` to the output of ``field``'s input embedding while active."""
    handles = []
    try:
        for field, delta in deltas.items():
            emb = model.input_embedding(field)
            assert emb is not None  # checked when the delta was made

            def hook(_m: nn.Module, _inp: object, out: torch.Tensor, delta: torch.Tensor = delta) -> torch.Tensor:
                if out.shape != delta.shape:
                    return out  # another use of the same table (e.g. a decoder), not the input
                return out + delta.to(out.dtype)

            handles.append(emb.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    flat = delta.flatten(1)
    n = flat.norm(dim=1).clamp_min(1e-12)
    factor = (eps / n).clamp(max=1.0)
    return (flat * factor.unsqueeze(1)).view_as(delta)


def _ascend(delta: torch.Tensor, grad: torch.Tensor, alpha: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta + alpha * grad.sign()
    g = grad.flatten(1)
    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return delta + alpha * g.view_as(delta)


def _random_start(shape: torch.Size, eps: float, norm: str, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    u = torch.rand(shape, generator=gen, device="cpu").to(device) * 2 - 1
    if norm == "linf":
        return u * eps
    return _project(u * eps, eps, norm)


def _mask_like(mb: ModalityBatch, like: torch.Tensor) -> torch.Tensor:
    """1 where the perturbation may act: present items, real tokens."""
    m = mb.mask.to(like.dtype)
    if mb.mask.dim() == 2 and like.dim() >= 3 and like.shape[:2] == mb.mask.shape:
        return m.view(*m.shape, *([1] * (like.dim() - 2)))
    present = mb.present.to(like.dtype)
    return present.view(-1, *([1] * (like.dim() - 1)))


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


class AdversarialAttack:
    """FGSM (one step of size epsilon) or PGD (``steps`` projected steps) on a model's loss.

    ``fields`` (the data description) tells which continuous fields are
    normalised pixels, so epsilon and clamping happen in pixel units.
    """

    def __init__(self, cfg: AdversarialConfig, generator: torch.Generator | None = None,
                 fields: dict[str, FieldInfo] | None = None):
        self.cfg = cfg
        self.generator = generator
        self.field_info = dict(fields or {})

    def fields(self, model: PolymodalModel, batch: Batch) -> list[str]:
        wanted = list(self.cfg.fields) if self.cfg.fields is not None else list(model.input_fields)
        for f in wanted:
            if f not in model.input_fields:
                raise ConfigError(f"train.adversarial.fields: model has no input field {f!r} "
                                  f"(fields: {', '.join(model.input_fields)})")
        return [f for f in wanted if f in batch.inputs]

    def perturb(self, model: PolymodalModel, batch: Batch) -> Perturbation:
        cfg = self.cfg
        steps = 1 if cfg.attack == "fgsm" else cfg.steps
        cont: dict[str, torch.Tensor] = {}
        disc: dict[str, torch.Tensor] = {}
        eps: dict[str, float] = {}
        masks: dict[str, torch.Tensor] = {}
        stats: dict[str, tuple[torch.Tensor, torch.Tensor] | None] = {}
        for f in self.fields(model, batch):
            mb = batch.inputs[f]
            if mb.data.is_floating_point():
                shape, eps[f] = mb.data.shape, cfg.epsilon
                masks[f] = _mask_like(mb, mb.data)
                stats[f] = pixel_stats(self.field_info.get(f), mb.data)
                target = cont
            else:
                emb = model.input_embedding(f)
                if emb is None:
                    raise ConfigError(f"train.adversarial: field {f!r} is discrete and its encoder has no nn.Embedding "
                                      "to perturb; leave it out of train.adversarial.fields")
                shape = torch.Size((*mb.data.shape[:2], emb.embedding_dim))
                eps[f] = cfg.text_epsilon
                masks[f] = _mask_like(mb, torch.empty(shape))
                target = disc
            if cfg.random_start and cfg.attack == "pgd":
                d = _random_start(shape, eps[f], cfg.norm, self.generator, mb.data.device)
            else:
                d = torch.zeros(shape, device=mb.data.device)
            d = d * masks[f].to(d.device)
            if f in stats:
                d = self._clamp_delta(batch.inputs[f].data, d, stats[f])
            target[f] = d
        if not cont and not disc:
            return Perturbation(batch)
        was_training = model.training
        for _ in range(steps):
            deltas = {f: d.detach().requires_grad_(True) for f, d in {**cont, **disc}.items()}
            adv = self._apply(batch, {f: deltas[f] for f in cont}, stats)
            with embedding_offsets(model, {f: deltas[f] for f in disc}):
                loss, _ = model.loss(adv)
            grads = torch.autograd.grad(loss, list(deltas.values()), allow_unused=True)
            for (f, d), g in zip(deltas.items(), grads, strict=True):
                if g is None:
                    continue
                alpha = eps[f] if cfg.attack == "fgsm" else (cfg.step_size or 2.5 * eps[f] / steps)
                new = _project(_ascend(d.detach(), g, alpha, cfg.norm), eps[f], cfg.norm) * masks[f].to(d.device)
                if f in cont:
                    new = self._clamp_delta(batch.inputs[f].data, new, stats[f])
                    cont[f] = new
                else:
                    disc[f] = new
        model.train(was_training)
        return Perturbation(self._apply(batch, cont, stats), {f: d.detach() for f, d in disc.items()})

    def _clamp_delta(self, x: torch.Tensor, delta: torch.Tensor,
                     stat: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """Keep ``pixels(x) + delta`` inside the clamp range (pixel-normalised fields only)."""
        if self.cfg.clamp is None or stat is None:
            return delta
        lo, hi = self.cfg.clamp
        pix = x * stat[1] + stat[0]
        return (pix + delta).clamp(lo, hi) - pix

    @staticmethod
    def _apply(batch: Batch, deltas: dict[str, torch.Tensor],
               stats: dict[str, tuple[torch.Tensor, torch.Tensor] | None] | None = None) -> Batch:
        """Add pixel-unit deltas (divided by std where the data is normalised)."""
        inputs = dict(batch.inputs)
        for f, d in deltas.items():
            mb = inputs[f]
            stat = (stats or {}).get(f)
            inputs[f] = ModalityBatch(mb.data + (d / stat[1] if stat is not None else d), mb.mask, mb.meta)
        return Batch(inputs, batch.targets, batch.ids)


class AdversarialStrategy:
    """Mix of clean and adversarial losses on every batch."""

    name = "adversarial"

    def __init__(self, cfg: AdversarialConfig, seed: int, fields: dict[str, FieldInfo] | None = None):
        if not 0.0 <= cfg.mix <= 1.0:
            raise ConfigError(f"train.adversarial.mix: expected a fraction in [0, 1], got {cfg.mix}")
        gen = torch.Generator()
        gen.manual_seed(seed + 7919)
        self.cfg = cfg
        self.attack = AdversarialAttack(cfg, gen, fields)

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
