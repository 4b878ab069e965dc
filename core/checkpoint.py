"""Checkpoints: safetensors weights plus a JSON that rebuilds the model alone.

A checkpoint folder holds:

``model.safetensors``  the model's ``state_dict`` (no pickle, ever).
``checkpoint.json``    the resolved experiment config, the data description
                       (:meth:`ModelContext.to_json`), the training position
                       (epoch, step), and the versions of polymodal, torch and
                       the plugins that built it; ``extra`` lists companion
                       files such as fitted text vocabularies.
``train_state.pt``     (resumable checkpoints only) optimiser, scheduler and
                       RNG states, written with ``torch.save`` of tensors and
                       plain containers and read back with
                       ``torch.load(weights_only=True)``.

:func:`load_model` needs only the folder and a plugin manager: the config in
``checkpoint.json`` names every component, so the exact model is rebuilt and
its weights loaded strictly; a checkpoint from another model is an error that
names the tensors that do not match.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.errors import DataError

WEIGHTS = "model.safetensors"
META = "checkpoint.json"
TRAIN_STATE = "train_state.pt"
FORMAT_VERSION = 1


def versions(plugins: Any | None = None) -> dict[str, Any]:
    """Versions of polymodal, torch, Python and (optionally) every loaded plugin."""
    import polymodal

    out: dict[str, Any] = {
        "polymodal": polymodal.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if plugins is not None:
        out["plugins"] = {
            r.name: f"{r.distribution} {r.version}".strip() for r in plugins.records.values() if r.status == "loaded"
        }
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(
    folder: str | Path,
    model: nn.Module,
    *,
    experiment: dict[str, Any],
    context: dict[str, Any],
    position: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
    plugins: Any | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder; each file replaced atomically, metadata last."""
    from safetensors.torch import save

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    _atomic_write(out / WEIGHTS, save(_untie(state)))
    if train_state is not None:
        tmp = out / (TRAIN_STATE + ".tmp")
        torch.save(train_state, tmp)
        os.replace(tmp, out / TRAIN_STATE)
    meta = {
        "format": FORMAT_VERSION,
        "experiment": experiment,
        "context": context,
        "position": position or {},
        "versions": versions(plugins),
        "model_class": f"{type(model).__module__}:{type(model).__qualname__}",
        **({"extra": extra} if extra else {}),
    }
    _atomic_write(out / META, json.dumps(meta, indent=2, sort_keys=True, default=str).encode())
    return out


def _untie(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing memory; store shared ones as copies."""
    seen: dict[tuple[int, int], str] = {}
    out = {}
    for k, v in state.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset()) if v.numel() else (id(v), 0)
        out[k] = v.clone() if key in seen else v
        seen.setdefault(key, k)
    return out


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The ``checkpoint.json`` of a checkpoint folder, with clear errors."""
    path = Path(folder) / META
    if not path.is_file():
        raise DataError(f"{folder}: not a polymodal checkpoint (no {META})")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise DataError(f"{path}: unreadable checkpoint metadata: {type(exc).__name__}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise DataError(f"{path}: unsupported checkpoint format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    return meta


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; a truncated or foreign file is a DataError."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such weights file")
    try:
        return load_file(str(p))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise DataError(f"{p}: not a valid safetensors file (truncated or corrupt?): {exc}") from None


def load_module_weights(module: nn.Module, path: str | Path, *, what: str = "weights") -> None:
    """Load a safetensors file into ``module`` strictly, naming mismatches."""
    state = load_state_dict(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensors (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append("shape mismatch: " + "; ".join(shapes[:3]))
        raise DataError(f"{what} {path}: does not match the model: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def load_train_state(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / TRAIN_STATE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: unreadable training state (truncated?): {exc}") from None


def load_model(folder: str | Path, plugins: Any | None = None) -> Any:
    """Rebuild the exact model of a checkpoint folder and load its weights.

    Returns the model in eval mode. ``plugins`` defaults to the process-wide
    manager; it must provide the components the checkpoint names.
    """
    from polymodal.experiment import experiment_from_dict
    from polymodal.model_api import ModelContext, build_model
    from polymodal.plugins import get_plugins

    meta = read_meta(folder)
    plugins = plugins if plugins is not None else get_plugins()
    source = str(Path(folder) / META)
    try:
        config = experiment_from_dict(meta["experiment"], source)
        ctx = ModelContext.from_json(meta["context"], plugins, source)
    except KeyError as exc:
        raise DataError(f"{source}: missing {exc}") from None
    model = build_model(config.model, ctx)
    load_module_weights(model, Path(folder) / WEIGHTS, what="checkpoint")
    model.eval()
    return model


__all__ = [
    "load_model",
    "load_module_weights",
    "load_state_dict",
    "load_train_state",
    "read_meta",
    "save_checkpoint",
    "versions",
]
