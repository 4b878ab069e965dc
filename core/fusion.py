"""Fusion input helpers: checking and normalising what a fusion strategy receives.

Part of the component API (``docs/public-api.md``): every fusion, built-in or
third-party, gets the same input rules from here, so "missing modality" means
the same thing in all of them:

* the modalities are those the fusion was built for (``input_dims``); a
  modality absent from the ``features`` dict is treated as missing for every
  sample (so an evaluation axis can drop a modality by leaving it out);
* positions whose mask is false are zeroed *before* any arithmetic, so that
  whatever a missing modality or a padding position holds (random values,
  ``inf``, ``NaN``) can never reach the output or the gradients;
* a wrong feature size or batch size is a :class:`~polymodal.errors.DataError`
  naming the modality and what was expected, not a matmul error from torch.

Typical use in a fusion's ``__init__`` and ``forward``::

    self.input_dims = check_input_dims("my-fusion", input_dims)
    ...
    inputs = gather_inputs("my-fusion", self.input_dims, features)
    vectors = inputs.pooled_all()  # [B, D_m] per modality, zero where missing
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import torch

from polymodal.batch import Features
from polymodal.errors import ConfigError, DataError, did_you_mean


def check_input_dims(fusion: str, input_dims: Mapping[str, int]) -> dict[str, int]:
    """Validate the constructor's ``input_dims`` and return them in a fixed (sorted) order.

    Sorting makes the parameter layout independent of the order a config
    happened to list modalities in, so checkpoints load regardless.
    """
    if not isinstance(input_dims, Mapping) or not input_dims:
        raise ConfigError(f"fusion {fusion!r}: input_dims must map at least one modality name to its feature size")
    out: dict[str, int] = {}
    for name in sorted(input_dims):
        dim = input_dims[name]
        if not isinstance(name, str) or not name:
            raise ConfigError(f"fusion {fusion!r}: modality names must be non-empty strings, got {name!r}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"fusion {fusion!r}: input_dims[{name!r}] must be a positive integer, got {dim!r}")
        out[name] = dim
    return out


def check_positive(fusion: str, key: str, value: object) -> int:
    """A positive integer parameter, or a :class:`ConfigError` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"fusion {fusion!r}: parameter {key!r} must be a positive integer, got {value!r}")
    return value


@attrs.frozen
class FusionInputs:
    """Per-modality token features aligned to the fusion's modality order.

    ``tokens[m]`` is ``[B, T_m, D_m]`` with masked positions set to zero,
    ``masks[m]`` is ``[B, T_m]`` and ``present`` is ``[B, M]`` (column order =
    ``modalities``).
    """

    modalities: tuple[str, ...]
    tokens: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    present: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.present.shape[0])

    def pooled(self, modality: str) -> torch.Tensor:
        """Masked mean over tokens ``[B, D]``; exactly zero where the modality is missing."""
        m = self.masks[modality].unsqueeze(-1).to(self.tokens[modality].dtype)
        return (self.tokens[modality] * m).sum(1) / m.sum(1).clamp_min(1.0)

    def pooled_all(self) -> list[torch.Tensor]:
        """:meth:`pooled` of every modality, in ``modalities`` order (for fusions of one vector per modality)."""
        return [self.pooled(m) for m in self.modalities]


def gather_inputs(fusion: str, input_dims: Mapping[str, int], features: Mapping[str, Features]) -> FusionInputs:
    """Validate ``features`` against ``input_dims`` and zero every masked position."""
    unknown = [k for k in features if k not in input_dims]
    if unknown:
        name = unknown[0]
        raise DataError(
            f"fusion {fusion!r} got features for modality {name!r}{did_you_mean(name, input_dims)} "
            f"but was built for: {', '.join(input_dims)}"
        )
    given = [features[k] for k in input_dims if k in features]
    if not given:
        raise DataError(
            f"fusion {fusion!r} got no features; it needs at least one of: {', '.join(input_dims)} "
            "(an absent modality is allowed, but the batch size must come from somewhere)"
        )
    ref = given[0].tokens
    batch, device, dtype = int(ref.shape[0]), ref.device, ref.dtype

    tokens: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    present: list[torch.Tensor] = []
    for name, dim in input_dims.items():
        feat = features.get(name)
        if feat is None:
            tok = torch.zeros(batch, 1, dim, device=device, dtype=dtype)
            mask = torch.zeros(batch, 1, dtype=torch.bool, device=device)
        else:
            tok, mask = feat.tokens, feat.mask
            if tok.dim() != 3:
                raise DataError(
                    f"fusion {fusion!r}: modality {name!r} tokens must be [batch, tokens, {dim}], "
                    f"got shape {tuple(tok.shape)}"
                )
            if tok.shape[-1] != dim:
                raise DataError(
                    f"fusion {fusion!r}: modality {name!r} has feature size {tok.shape[-1]}, "
                    f"but the fusion was built with input_dims[{name!r}] = {dim}"
                )
            if tok.shape[0] != batch:
                raise DataError(
                    f"fusion {fusion!r}: modality {name!r} has batch size {tok.shape[0]}, "
                    f"other modalities have {batch}"
                )
            if tuple(mask.shape) != tuple(tok.shape[:2]):
                raise DataError(
                    f"fusion {fusion!r}: modality {name!r} mask has shape {tuple(mask.shape)}, "
                    f"expected {tuple(tok.shape[:2])} to match its tokens"
                )
            mask = mask.to(torch.bool)
            if tok.shape[1] == 0:  # no positions at all: same as missing
                tok = tok.new_zeros(batch, 1, dim)
                mask = torch.zeros(batch, 1, dtype=torch.bool, device=device)
            tok = torch.where(mask.unsqueeze(-1), tok, torch.zeros((), dtype=tok.dtype, device=tok.device))
        tokens[name] = tok
        masks[name] = mask
        present.append(mask.any(dim=1))
    return FusionInputs(tuple(input_dims), tokens, masks, torch.stack(present, dim=1))


__all__ = ["FusionInputs", "check_input_dims", "check_positive", "gather_inputs"]
