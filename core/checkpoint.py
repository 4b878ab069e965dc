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

Saving is atomic as a whole, not file by file: the files are written into a
new sibling folder (``checkpoint-<step id>``), metadata last, each fsynced;
then the name ``checkpoint`` -- a relative symbolic link -- is switched to it
with one ``rename``, and only then is the previous folder removed. A kill at
any moment leaves either the old checkpoint or the new one, never weights of
one step with the metadata of another. ``checkpoint.json`` records the step id
and the SHA-256 of every file; :func:`verify_checkpoint` (called by
``--resume`` and :func:`load_model`) checks them and names a file that does
not belong.

:func:`load_model` needs only the folder and a plugin manager: the config in
``checkpoint.json`` names every component, so the exact model is rebuilt and
its weights loaded strictly; a checkpoint from another model is an error that
names the tensors that do not match.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.errors import DataError
from polymodal.faults import write_point
from polymodal.versions import versions

WEIGHTS = "model.safetensors"
META = "checkpoint.json"
TRAIN_STATE = "train_state.pt"
FORMAT_VERSION = 1


def _write_durable(path: Path, data: bytes) -> None:
    write_point(f"write {path.name}")
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        write_point(f"fsync {path.name}")
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _switch(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (a sibling) in one rename; a real folder in the way is moved aside first."""
    if link.is_dir() and not link.is_symlink():  # a checkpoint written before atomic saves
        aside = link.with_name(f"{link.name}-previous-{secrets.token_hex(4)}")
        os.rename(link, aside)
    tmp = link.with_name(f".{link.name}.link-{secrets.token_hex(4)}")
    os.symlink(target.name, tmp)
    write_point(f"switch {link.name}")
    os.replace(tmp, link)
    _fsync_dir(link.parent)


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
    companions: Callable[[Path], dict[str, Any]] | None = None,
) -> Path:
    """Write a checkpoint as a whole, then switch ``folder`` to it in one step (see the module docs).

    ``companions(staging_folder)`` may write further files (vocabularies)
    into the new checkpoint before its metadata; what it returns is merged
    into ``extra``. Returns ``folder``.
    """
    from safetensors.torch import save

    link = Path(folder)
    link.parent.mkdir(parents=True, exist_ok=True)
    step = (position or {}).get("global_step", 0)
    step_id = f"{int(step):09d}-{secrets.token_hex(4)}"
    for stale in link.parent.glob(f".{link.name}-*.partial"):  # left by a kill during an earlier save
        shutil.rmtree(stale, ignore_errors=True)
    staging = link.with_name(f".{link.name}-{step_id}.partial")
    staging.mkdir()
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    _write_durable(staging / WEIGHTS, save(_untie(state)))
    if train_state is not None:
        buf = io.BytesIO()
        torch.save(train_state, buf)
        _write_durable(staging / TRAIN_STATE, buf.getvalue())
    extra = {**(extra or {}), **(companions(staging) if companions else {})}
    files = sorted(p.name for p in staging.iterdir() if p.is_file())
    meta = {
        "format": FORMAT_VERSION,
        "experiment": experiment,
        "context": context,
        "position": position or {},
        "versions": versions(plugins),
        "model_class": f"{type(model).__module__}:{type(model).__qualname__}",
        "step_id": step_id,
        "checksums": {name: _sha256(staging / name) for name in files},
        **({"extra": extra} if extra else {}),
    }
    _write_durable(staging / META, json.dumps(meta, indent=2, sort_keys=True, default=str).encode())
    _fsync_dir(staging)
    final = link.with_name(f"{link.name}-{step_id}")
    os.rename(staging, final)
    _switch(link, final)
    # Older checkpoints go only now that the new one is complete and current: the previous one, and any
    # left by a save killed after its rename but before the switch.
    ours = re.compile(rf"{re.escape(link.name)}-(\d{{9}}-[0-9a-f]{{8}}|previous-[0-9a-f]{{8}})")
    for old in link.parent.iterdir():
        if old.name != final.name and ours.fullmatch(old.name) and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        elif old.name.startswith(f".{link.name}.link-") and old.is_symlink():
            old.unlink()
    return link


def verify_checkpoint(folder: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint whose files all match the checksums it records; else a DataError.

    Checkpoints from before checksums were recorded pass unchecked.
    """
    meta = read_meta(folder)
    sums = meta.get("checksums")
    if not isinstance(sums, dict):
        return meta
    where = Path(folder)
    for name, digest in sorted(sums.items()):
        path = where / name
        if not path.is_file():
            raise DataError(f"{path}: missing; checkpoint.json (step id {meta.get('step_id')}) lists it")
        if _sha256(path) != digest:
            raise DataError(f"{path}: does not belong to {where / META} (step id {meta.get('step_id')}): its "
                            "SHA-256 differs from the one recorded; the checkpoint was changed or mixed with another")
    return meta


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
    verify_checkpoint(folder)
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
    "verify_checkpoint",
    "versions",
]
