"""Parameters of the built-in training strategies (``[train.strategy_params]``).

Light on purpose (attrs only, no torch): ``polymodal info strategy <name>``
and suite validation read these classes without building anything.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _fraction(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name}: expected a fraction in [0, 1], got {value}")


@attrs.frozen
class JointParams:
    """Joint training takes no options."""


@attrs.frozen
class StagedParams:
    """Unimodal pre-training, then fusion fine-tuning.

    Stage 1 trains each encoder alone (with a small auxiliary head) for
    ``pretrain_epochs``; stage 2 trains fusion and head with encoders frozen
    for ``freeze_epochs``, then unfreezes them at ``unfreeze_lr_scale`` times
    the learning rate for the remaining epochs.
    """

    pretrain_epochs: int = attrs.field(default=1, validator=_non_negative)
    freeze_epochs: int = attrs.field(default=1, validator=_non_negative)
    unfreeze_lr_scale: float = attrs.field(default=0.1, validator=_non_negative)


@attrs.frozen
class AdversarialParams:
    """Perturbations mixed into training batches.

    ``attack`` names a registered attack (``polymodal list attacks``), so a
    third-party attack trains models too. Continuous inputs are perturbed in
    input space (``epsilon`` in pixel units for fields whose modality
    normalises pixels); discrete inputs (token ids) in the space of their
    input embeddings (``text_epsilon``).
    """

    attack: str = "pgd"
    norm: Literal["linf", "l2"] = "linf"
    epsilon: float = attrs.field(default=4 / 255, validator=_non_negative)
    #: Epsilon for embedding-space perturbations of discrete inputs.
    text_epsilon: float = attrs.field(default=0.05, validator=_non_negative)
    #: Steps of iterative attacks (ignored by one-step attacks such as fgsm).
    steps: int = attrs.field(default=3, validator=_positive)
    #: Step length in the units of ``epsilon`` (default 2.5 * epsilon / steps).
    step_size: float | None = attrs.field(default=None, validator=_positive)
    random_start: bool = True
    #: Fields to perturb; default: every input field of the model.
    fields: list[str] | None = None
    #: Fraction of each loss from the adversarial batch (the rest from the clean one).
    mix: float = attrs.field(default=0.5, validator=_fraction)
    #: Valid pixel range of pixel-normalised fields (images, video); None: no clamp.
    clamp: list[float] | None = attrs.field(factory=lambda: [0.0, 1.0])
