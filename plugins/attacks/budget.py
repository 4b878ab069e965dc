"""The attack plugin contract: what an attack perturbs and within which limits.

An attack (kind ``attacks``) is built as ``factory(**params)`` and called as::

    deltas = attack(loss_fn, inputs, epsilon=eps, generator=g)

``inputs`` maps a name (an input field) to a :class:`PerturbationSpace`; the
attack returns one ``delta`` per name, of the space's shape, that *increases*
``loss_fn(deltas)`` (a per-sample loss ``[B]``, summed by the attack) while
staying inside the ``norm`` ball of radius ``epsilon * space.scale`` per
sample, inside the box ``[lower, upper]`` (valid pixel range expressed as
bounds on the delta) and zero where ``mask`` is zero (missing items, padding
tokens). Several names are attacked jointly, each in its own ball.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch

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
    if norm not in NORMS:
        raise ConfigError(f"{where}: norm must be one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def per_sample_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """``[B]`` norms of a delta, flattened per sample."""
    flat = delta.flatten(1)
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)
