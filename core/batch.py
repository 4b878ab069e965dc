"""The tensors that flow between modalities, encoders, fusions and models.

These two small containers are the whole data contract between plugin kinds:
a modality collates samples into a :class:`ModalityBatch`; an encoder turns it
into :class:`Features`; a fusion strategy consumes ``dict[str, Features]``.
A missing modality is not a special case: its rows have an all-false mask.

torch is imported lazily so that importing the core stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import torch


@attrs.define
class ModalityBatch:
    """Padded data of one modality for a batch.

    ``data`` is ``[B, ...]``. ``mask`` is boolean, ``[B]`` (a whole item is
    present or not, e.g. an image) or ``[B, T]`` (which positions are real,
    e.g. tokens, audio frames or video frames). A row that is all false is a
    missing modality for that sample.
    """

    data: torch.Tensor
    mask: torch.Tensor
    meta: dict[str, Any] = attrs.field(factory=dict)

    @property
    def present(self) -> torch.Tensor:
        """``[B]`` boolean: whether each sample has this modality at all."""
        return self.mask if self.mask.dim() == 1 else self.mask.any(dim=1)

    def to(self, device: Any) -> ModalityBatch:
        return ModalityBatch(self.data.to(device), self.mask.to(device), self.meta)

    def __len__(self) -> int:
        return int(self.data.shape[0])


@attrs.define
class Features:
    """Token features ``[B, T, D]`` with a boolean mask ``[B, T]``."""

    tokens: torch.Tensor
    mask: torch.Tensor

    @property
    def dim(self) -> int:
        return int(self.tokens.shape[-1])

    @property
    def present(self) -> torch.Tensor:
        return self.mask.any(dim=1)

    def pooled(self) -> torch.Tensor:
        """Masked mean over tokens, ``[B, D]``; zeros for a missing modality.

        Masked positions are replaced, not multiplied by zero, so whatever
        padding holds (``NaN`` from a fully masked attention row, ``inf``)
        never reaches the mean or its gradient.
        """
        m = self.mask.unsqueeze(-1)
        tokens = self.tokens.masked_fill(~m, 0.0)
        return tokens.sum(1) / m.to(self.tokens.dtype).sum(1).clamp_min(1.0)


@attrs.define
class Batch:
    """A collated batch: per-modality data, targets, and sample ids."""

    inputs: dict[str, ModalityBatch]
    targets: dict[str, Any] = attrs.field(factory=dict)
    ids: list[Any] = attrs.field(factory=list)

    def to(self, device: Any) -> Batch:
        import torch

        targets = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.targets.items()}
        return Batch({k: v.to(device) for k, v in self.inputs.items()}, targets, self.ids)

    def __len__(self) -> int:
        for mb in self.inputs.values():
            return len(mb)
        return len(self.ids)
