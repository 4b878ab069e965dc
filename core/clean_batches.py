"""Clean evaluation batches, preprocessed and collated once per run and shared by every axis.

The task, noise, adversarial, importance, attention, retrieval and zero-shot
axes of one run all evaluate the same clean split. Without sharing, each of
them reads every sample again and runs the modalities' preprocessing again
(decoding, resizing, tokenising, log-mel features) for batches that come out
identical. :func:`clean_batch` is the one place an axis asks for "the clean
batch of these samples": the first axis to ask builds it through
``data.collate``; later axes asking for the same samples get a copy of it.

What keys a batch: the split's dataset object, the sample indices (so each
``torchrun`` rank caches its own shard, and axes with other batch sizes get
their own batches, exactly as ``collate`` forms them) and a fingerprint of the
collate function (its modalities' ``describe()``), so a modality configured
differently never receives a stale batch. Nothing here communicates between
ranks, and the cache lives in one process's memory: ``--resume`` starts empty
and rebuilds, so no batch can outlive the data it was made from.

Memory is bounded: batches are kept until their tensors (and the raw arrays
the samples hold) reach ``POLYMODAL_EVAL_CACHE_MB`` (default 256 MiB); later
batches are built each time they are asked for, as before. ``0`` turns the
cache off. A hit returns fresh tensors (a copy), so an axis that changes a
batch in place cannot change what the next axis sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from polymodal.errors import ConfigError

if TYPE_CHECKING:
    from polymodal.batch import Batch

#: Environment variable: the cache's size limit in MiB (0: no cache).
LIMIT_ENV = "POLYMODAL_EVAL_CACHE_MB"
DEFAULT_LIMIT_MB = 256.0
#: The attribute of an evaluation data object that holds its cache.
ATTRIBUTE = "clean_batches"


def limit_bytes() -> int:
    """The cache limit from ``POLYMODAL_EVAL_CACHE_MB``; a bad value is an error naming the variable."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    if not raw:
        return int(DEFAULT_LIMIT_MB * 2**20)
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        raise ConfigError(f"{LIMIT_ENV}={raw!r}: expected a size in MiB (a number >= 0; 0 turns the cache off)")
    return int(mb * 2**20)


def _fingerprint(collate: Callable[..., Any]) -> str:
    """What the collate function does, as text: its modalities' descriptions and its targets."""
    modalities = getattr(collate, "modalities", None)
    if not isinstance(modalities, dict):
        return f"collate@{id(collate)}"
    parts: dict[str, Any] = {}
    for field, modality in modalities.items():
        describe = getattr(modality, "describe", None)
        try:
            parts[field] = describe() if callable(describe) else repr(modality)
        except Exception:  # noqa: BLE001 - an undescribable modality is keyed by identity instead
            parts[field] = f"modality@{id(modality)}"
    parts["#targets"] = list(getattr(collate, "targets", []))
    return json.dumps(parts, sort_keys=True, default=repr)


def _nbytes(value: Any) -> int:
    """Bytes held by the tensors and arrays in ``value`` (batches, sample dicts, lists, PIL images)."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    if hasattr(value, "inputs") and hasattr(value, "targets"):  # Batch
        return sum(_nbytes(mb.data) + _nbytes(mb.mask) for mb in value.inputs.values()) + _nbytes(value.targets)
    samples = getattr(value, "samples", None)  # AudioClip
    if samples is not None:
        return _nbytes(samples)
    size = getattr(value, "size", None)  # PIL image
    if isinstance(size, tuple) and len(size) == 2 and hasattr(value, "mode"):
        return int(size[0]) * int(size[1]) * 4
    return 0


def _copy(batch: Batch) -> Batch:
    """New tensors with the same values (meta dicts copied one level deep)."""
    import torch

    from polymodal.batch import Batch, ModalityBatch

    inputs = {f: ModalityBatch(mb.data.clone(), mb.mask.clone(), dict(mb.meta)) for f, mb in batch.inputs.items()}
    targets = {k: v.clone() if isinstance(v, torch.Tensor) else (list(v) if isinstance(v, list) else v)
               for k, v in batch.targets.items()}
    return Batch(inputs, targets, list(batch.ids))


class CleanBatches:
    """Collated clean batches of one evaluation data object, up to a memory limit (see module docs)."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = limit_bytes() if max_bytes is None else int(max_bytes)
        self.used = 0
        self.hits = 0
        self.misses = 0
        self._store: dict[tuple[Any, ...], tuple[list[dict[str, Any]], Batch]] = {}

    def get(self, dataset: Any, indices: Sequence[int], collate: Callable[[list[Any]], Batch],
            split: str = "", samples: list[Any] | None = None) -> tuple[list[dict[str, Any]], Batch]:
        """The samples ``dataset[i]`` for ``indices`` and their collated batch (on the CPU, as collate made it).

        ``samples``: those samples when the caller has read them already (a
        streamed dataset is read front to back by its caller); only the
        batch then comes from the cache.
        """
        key = (split, id(dataset), tuple(int(i) for i in indices), _fingerprint(collate))
        found = self._store.get(key)
        if found is not None:
            self.hits += 1
            kept, batch = found
            return (list(samples) if samples is not None else [dict(s) for s in kept]), _copy(batch)
        self.misses += 1
        if samples is None:
            samples = [dataset[i] for i in indices]
        batch = collate(samples)
        size = _nbytes(batch) + _nbytes(samples)
        if self.max_bytes > 0 and self.used + size <= self.max_bytes:
            # Kept as built; callers get copies, so the stored batch is never handed out.
            self._store[key] = ([dict(s) for s in samples], _copy(batch))
            self.used += size
        return samples, batch

    def clear(self) -> None:
        self._store.clear()
        self.used = 0


def cache_of(data: Any) -> CleanBatches | None:
    """The cache attached to ``data``; one is attached on first use. None when ``data`` takes no attributes
    or the cache is off (``POLYMODAL_EVAL_CACHE_MB=0``)."""
    cache = getattr(data, ATTRIBUTE, None)
    if isinstance(cache, CleanBatches):
        return cache
    cache = CleanBatches()
    if cache.max_bytes <= 0:
        return None
    try:
        setattr(data, ATTRIBUTE, cache)
    except (AttributeError, TypeError):
        return None
    return cache


def clean_batch(data: Any, split: str, indices: Sequence[int], dataset: Any = None, *,
                samples: list[Any] | None = None) -> tuple[list[dict[str, Any]], Batch]:
    """The raw samples of ``split`` at ``indices`` and their clean collated batch, built once per run.

    ``data`` is the axis's :class:`polymodal.evaluation.EvalData`; ``dataset``
    defaults to ``data.splits[split]``. ``samples``: the samples at
    ``indices`` when the caller read them already, as it must for a streamed
    dataset (:func:`polymodal.streaming.iter_samples`, one pass front to
    back). The batch is on the CPU; move it with ``.to(ctx.device)``.
    Changing the returned samples or batch in place is safe: they are copies
    of what the cache keeps.
    """
    ds = data.splits[split] if dataset is None else dataset
    cache = cache_of(data)
    if cache is None:
        read = [ds[i] for i in indices] if samples is None else samples
        return read, data.collate(read)
    return cache.get(ds, indices, data.collate, split, samples)
