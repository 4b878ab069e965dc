"""The training-strategy contract (kind ``strategies``).

A strategy decides the loss of a batch and what is trainable in an epoch;
the trainer's loop owns everything else (order, schedule, clipping,
precision, checkpoints). Strategies are registered like any component::

    @hookimpl
    def register_strategies(register):
        register("mixup", "my_pkg.mixup:MixupStrategy", params="my_pkg.params:MixupParams",
                 description="Mixup of inputs and targets.")

and chosen with ``[train] strategy = "mixup"``; their options go in
``[train.strategy_params]`` and are validated against ``params`` before
anything trains. This module stays light (no torch).
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs


@attrs.frozen
class StrategyContext:
    """What a strategy factory is given besides its parameters (fields are only ever added)."""

    #: The model being trained (a :class:`polymodal.model_api.PolymodalModel`).
    model: Any
    #: ``[train] seed``: derive any random generator from it so runs repeat.
    seed: int
    #: Input field -> :class:`polymodal.model_api.FieldInfo` (modality and its parameters).
    fields: dict[str, Any] = attrs.field(factory=dict)
    #: The loaded plugins, to build other components (e.g. an attack) by name.
    plugins: Any = None
    #: The whole validated :class:`polymodal.experiment.ExperimentConfig`.
    config: Any = None
    #: Modality objects by input field, to read their declared traits.
    modalities: dict[str, Any] = attrs.field(factory=dict)


class Strategy(Protocol):
    """What the trainer calls on a strategy."""

    def begin_epoch(self, model: Any, epoch: int, optimizer: Any) -> str:
        """Prepare an epoch (freeze, rescale learning rates); return its phase name for the logs."""

    def loss(self, model: Any, batch: Any) -> tuple[Any, dict[str, float]]:
        """The loss to minimise on ``batch`` and the figures to log."""

    def state(self) -> dict[str, Any]:
        """Tensors to checkpoint (e.g. a generator's state) so ``--resume`` repeats exactly."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""


__all__ = ["Strategy", "StrategyContext"]
