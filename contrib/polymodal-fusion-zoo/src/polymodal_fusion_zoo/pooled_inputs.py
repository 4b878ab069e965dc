"""Turning ``dict[str, Features]`` into per-modality vectors and presence flags.

All three fusions in this package work on one vector per modality (the papers
fuse utterance-level vectors). They share this step so that a missing modality
means the same thing everywhere: its vector is exactly zero and its presence
flag is false, whether the key is absent from the dict or its mask row is all
false.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import torch

from polymodal.batch import Features
from polymodal import DataError


@attrs.frozen
class PooledInputs:
    """Masked-mean vectors ``[B, D_m]`` in modality order, with ``present`` ``[B, M]``."""

    vectors: list[torch.Tensor]
    present: torch.Tensor


def pool_inputs(features: Mapping[str, Features], modalities: Sequence[str],
                input_dims: Mapping[str, int], owner: str) -> PooledInputs:
    """Pool every expected modality; an absent key becomes an all-missing modality.

    ``owner`` names the fusion in error messages, so a wrongly sized feature
    tensor is reported as a configuration problem rather than a shape error
    deep inside a matmul.
    """
    unknown = sorted(set(features) - set(modalities))
    if unknown:
        raise DataError(f"{owner} fusion was built for modalities {list(modalities)} but got features for {unknown}")
    reference = next(iter(features.values()), None)
    if reference is None:
        raise DataError(f"{owner} fusion got no modality features at all")
    batch, device, dtype = reference.tokens.shape[0], reference.tokens.device, reference.tokens.dtype
    vectors, present = [], []
    for name in modalities:
        feats = features.get(name)
        if feats is None:
            vectors.append(torch.zeros(batch, input_dims[name], device=device, dtype=dtype))
            present.append(torch.zeros(batch, dtype=torch.bool, device=device))
            continue
        if feats.tokens.dim() != 3 or feats.dim != input_dims[name] or feats.tokens.shape[0] != batch:
            raise DataError(
                f"{owner} fusion: modality {name!r} features have shape {tuple(feats.tokens.shape)}; "
                f"expected [{batch}, T, {input_dims[name]}] (batch size of the other modalities, declared input_dims)"
            )
        pres = feats.present
        vectors.append(feats.pooled() * pres.unsqueeze(-1).to(dtype))
        present.append(pres)
    return PooledInputs(vectors, torch.stack(present, dim=1))
