"""Perturbation helpers shared by attacks, adversarial training and axes.

One implementation of each step, so that adversarial training and
adversarial evaluation perturb inputs in exactly the same way, and so that a
third-party attack or strategy reaches the same code through the public API
instead of another plugin's private names:

* :func:`project` -- onto the L-inf or L2 ball of radius ``eps`` (per sample);
* :func:`ascend` -- one ascent step (gradient sign for L-inf, normalised
  gradient for L2);
* :func:`random_start` -- a uniform start inside the ball, drawn on the CPU
  from a seeded generator so a run repeats on any device;
* :func:`mask_like` -- where a delta may act (present items, real tokens);
* :func:`embedding_offsets` -- add deltas to input-embedding outputs, the
  perturbation space of discrete inputs (token ids cannot be nudged);
* :class:`PerturbationSpace` -- what an attack perturbs within which limits.

Importing this module imports torch: use it inside builders, never in a
plugin's light ``__init__``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import attrs
import torch
from torch import nn

from polymodal.batch import ModalityBatch
from polymodal.errors import ConfigError

Norm = Literal["linf", "l2"]
NORMS = ("linf", "l2")


@attrs.frozen
class PerturbationSpace:
    """One perturbed input: delta shape, per-field epsilon scale, mask and box bounds on the delta."""

    shape: torch.Size
    #: The attack's epsilon is multiplied by this for this input (e.g. embedding vs pixel units).
    scale: float = 1.0
    #: Broadcastable to ``shape``: 1 where the delta may be non-zero.
    mask: torch.Tensor | None = None
    #: Bounds on the delta itself (``valid_min - x`` and ``valid_max - x``); None: unbounded.
    lower: torch.Tensor | None = None
    upper: torch.Tensor | None = None


def check_norm(norm: str, where: str) -> str:
    """``norm`` when it is one of :data:`NORMS`; a :class:`ConfigError` naming ``where`` otherwise."""
    if norm not in NORMS:
        raise ConfigError(f"{where}: norm must be one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def per_sample_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """``[B]`` norms of a delta, flattened per sample."""
    flat = delta.flatten(1)
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """``delta`` projected onto the per-sample ``norm`` ball of radius ``eps``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    flat = delta.flatten(1)
    n = flat.norm(dim=1).clamp_min(1e-12)
    factor = (eps / n).clamp(max=1.0)
    return (flat * factor.unsqueeze(1)).view_as(delta)


def ascend(delta: torch.Tensor, grad: torch.Tensor, alpha: float, norm: str) -> torch.Tensor:
    """One steepest-ascent step of length ``alpha`` in ``norm``."""
    if norm == "linf":
        return delta + alpha * grad.sign()
    g = grad.flatten(1)
    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return delta + alpha * g.view_as(delta)


def random_start(shape: torch.Size, eps: float, norm: str, generator: torch.Generator | None,
                 device: torch.device | str) -> torch.Tensor:
    """A random delta inside the ball (drawn on the CPU so seeds repeat across devices)."""
    u = torch.rand(shape, generator=generator, device="cpu").to(device) * 2 - 1
    if norm == "linf":
        return u * eps
    return project(u * eps, eps, norm)


def mask_like(mb: ModalityBatch, like: torch.Tensor) -> torch.Tensor:
    """1 where a perturbation of ``like``'s shape may act: present items, real tokens."""
    m = mb.mask.to(like.dtype)
    if mb.mask.dim() == 2 and like.dim() >= 3 and like.shape[:2] == mb.mask.shape:
        return m.view(*m.shape, *([1] * (like.dim() - 2)))
    present = mb.present.to(like.dtype)
    return present.view(-1, *([1] * (like.dim() - 1)))


@contextlib.contextmanager
def embedding_offsets(model: Any, deltas: dict[str, torch.Tensor]) -> Iterator[None]:
    """Add ``deltas[field]`` to the output of ``model.input_embedding(field)`` while active."""
    handles = []
    try:
        for field, delta in deltas.items():
            emb = model.input_embedding(field)
            if emb is None:
                raise ConfigError(f"field {field!r} has no input embedding to perturb")

            def hook(_m: nn.Module, _inp: object, out: torch.Tensor, delta: torch.Tensor = delta) -> torch.Tensor:
                if out.shape != delta.shape:
                    return out  # another use of the same table (e.g. a decoder), not the input
                return out + delta.to(out.dtype)

            handles.append(emb.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


__all__ = ["NORMS", "Norm", "PerturbationSpace", "ascend", "check_norm", "embedding_offsets", "mask_like",
           "per_sample_norm", "project", "random_start"]
