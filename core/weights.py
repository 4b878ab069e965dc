"""Freezing modules and saving/loading their weights as safetensors.

safetensors holds tensors only, so loading a weights file can never run
code (unlike pickle). Mismatches are reported by name: which keys are
missing, unexpected, or have a different shape, so a checkpoint from another
model gives a clear error instead of a half-loaded network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polymodal.errors import DataError

if TYPE_CHECKING:
    import torch


def freeze(module: torch.nn.Module, frozen: bool = True) -> torch.nn.Module:
    """Stop (or restart) gradients for every parameter; the module stays in place."""
    for p in module.parameters():
        p.requires_grad_(not frozen)
    return module


def save_weights(module: torch.nn.Module, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> Path:
    """Write the module's ``state_dict`` to a ``.safetensors`` file (tensors made contiguous)."""
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    # Tied weights share storage; safetensors refuses shared tensors, so store copies.
    seen: dict[int, str] = {}
    for k, v in list(state.items()):
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        if ptr in seen and ptr != -1:
            state[k] = v.clone()
        seen[ptr] = k
    save_file(state, str(p), metadata=metadata or {"format": "pt"})
    return p


def load_weights(module: torch.nn.Module, path: str | os.PathLike[str], *, strict: bool = True) -> Any:
    """Load a ``.safetensors`` file into ``module``; mismatches raise :class:`DataError` naming the keys."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: weights file not found")
    try:
        state = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{p}: not a valid safetensors file (truncated or another format?): {exc}") from None
    own = module.state_dict()
    wrong_shape = [
        f"{k} (file {tuple(v.shape)}, model {tuple(own[k].shape)})"
        for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    problems = []
    if wrong_shape:
        problems.append("shape mismatch: " + ", ".join(wrong_shape[:5]) + (" ..." if len(wrong_shape) > 5 else ""))
    if strict and missing:
        problems.append(f"missing {len(missing)} keys: " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    if strict and unexpected:
        problems.append(f"unexpected {len(unexpected)} keys: " + ", ".join(unexpected[:5])
                        + (" ..." if len(unexpected) > 5 else ""))
    if problems:
        raise DataError(f"{p}: weights do not match {type(module).__name__}: " + "; ".join(problems))
    return module.load_state_dict(state, strict=strict)


class WeightsMixin:
    """``freeze()``, ``save_weights(path)`` and ``load_weights(path)`` as methods of an ``nn.Module``."""

    def freeze(self, frozen: bool = True) -> Any:
        return freeze(self, frozen)  # type: ignore[arg-type]

    def save_weights(self, path: str | os.PathLike[str]) -> Path:
        return save_weights(self, path)  # type: ignore[arg-type]

    def load_weights(self, path: str | os.PathLike[str], strict: bool = True) -> Any:
        return load_weights(self, path, strict=strict)  # type: ignore[arg-type]

    def _finish_init(self, weights: str | os.PathLike[str] | None, frozen: bool) -> None:
        """Common tail of encoder constructors: optional weights file, optional freezing."""
        if weights is not None:
            self.load_weights(weights)
        if frozen:
            self.freeze()
