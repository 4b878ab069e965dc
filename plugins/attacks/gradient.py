"""Gradient attacks: FGSM and PGD, L-inf and L2 (see :mod:`.budget` for the contract).

The ball projection, ascent step and random start come from the public
:mod:`polymodal.perturb`, and adversarial training builds its attack from
this registry, so adversarial training and adversarial evaluation perturb
inputs in exactly the same way.
After each step the delta is projected onto the ball, clamped to the box and
masked; clamping and masking only move coordinates towards zero, so the
result stays inside the ball in either norm.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from polymodal.errors import ConfigError
from polymodal.perturb import PerturbationSpace, ascend, check_norm, project, random_start

LossFn = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def _constrain(delta: torch.Tensor, space: PerturbationSpace, eps: float, norm: str) -> torch.Tensor:
    delta = project(delta, eps, norm)
    if space.lower is not None or space.upper is not None:
        delta = delta.clamp(min=space.lower, max=space.upper)
    if space.mask is not None:
        delta = delta * space.mask.to(delta.dtype)
    return delta


class PGD:
    """Projected gradient ascent on the loss: ``steps`` steps of ``step_size`` (x epsilon), optional random start."""

    name = "pgd"
    #: Walks in ``steps`` steps of ``step_size`` from an optional random start: the adversarial axis passes
    #: its ``steps``, ``step_size`` and ``random_start`` (see the attacks contract).
    iterative = True

    def __init__(self, norm: str = "linf", steps: int = 10, step_size: float | None = None,
                 random_start: bool = True) -> None:
        self.norm = check_norm(norm, f"attacks.{self.name}")
        if steps < 1:
            raise ConfigError(f"attacks.{self.name}.steps: expected a positive integer, got {steps}")
        if step_size is not None and step_size <= 0:
            raise ConfigError(f"attacks.{self.name}.step_size: expected a positive fraction of epsilon, got {step_size}")
        self.steps = int(steps)
        #: Relative to epsilon; default 2.5 / steps (Madry et al.), so the walk can cross the ball.
        self.step_size = step_size
        self.random_start = random_start

    def describe(self) -> dict[str, object]:
        return {"attack": self.name, "norm": self.norm, "steps": self.steps,
                "step_size": self.step_size, "random_start": self.random_start}

    def __call__(self, loss_fn: LossFn, inputs: dict[str, PerturbationSpace], *, epsilon: float,
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        if epsilon < 0:
            raise ConfigError(f"attacks.{self.name}: epsilon must be >= 0, got {epsilon}")
        eps = {k: epsilon * s.scale for k, s in inputs.items()}
        if epsilon == 0:
            return {k: torch.zeros(s.shape, device=device) for k, s in inputs.items()}
        deltas = {}
        for k, s in inputs.items():
            start = (random_start(s.shape, eps[k], self.norm, generator, torch.device(device))
                     if self.random_start else torch.zeros(s.shape, device=device))
            deltas[k] = _constrain(start, s, eps[k], self.norm)
        rel = self.step_size if self.step_size is not None else 2.5 / self.steps
        for _ in range(self.steps):
            deltas = self._step(loss_fn, inputs, deltas, eps, {k: rel * e for k, e in eps.items()})
        return deltas

    def _step(self, loss_fn: LossFn, inputs: dict[str, PerturbationSpace], deltas: dict[str, torch.Tensor],
              eps: dict[str, float], alpha: dict[str, float]) -> dict[str, torch.Tensor]:
        live = {k: d.detach().requires_grad_(True) for k, d in deltas.items()}
        loss = loss_fn(live).sum()
        grads = torch.autograd.grad(loss, list(live.values()), allow_unused=True)
        out = {}
        for (k, d), g in zip(live.items(), grads, strict=True):
            if g is None:  # the loss does not depend on this input (e.g. a missing modality)
                out[k] = d.detach()
                continue
            out[k] = _constrain(ascend(d.detach(), g, alpha[k], self.norm), inputs[k], eps[k], self.norm)
        return out


class FGSM(PGD):
    """One gradient step of size epsilon from the clean input (Goodfellow et al.); L2 uses the normalised gradient."""

    name = "fgsm"
    #: One step from the clean input: it takes no step options.
    iterative = False

    def __init__(self, norm: str = "linf") -> None:
        super().__init__(norm=norm, steps=1, step_size=1.0, random_start=False)
