"""From dataset samples to :class:`~polymodal.batch.Batch`: the data glue.

A dataset (any map-style object, usually built by a ``datasets`` plugin)
exposes

* ``fields: dict[str, str]`` -- sample field -> modality kind, e.g.
  ``{"image": "image", "text": "text", "text_zh": "text"}``;
* ``targets: list[str]`` -- label keys present in every sample;
* ``__len__`` / ``__getitem__(i) -> dict`` with those fields (a missing
  modality is a missing key or ``None``), the targets, and an ``"id"``;
* optionally ``root`` (where relative paths resolve), ``name``,
  ``texts(field) -> list[str]`` (cheap access to captions for fitting a
  vocabulary), ``class_names: dict[target, list[str]]``,
  ``num_classes: dict[target, int]`` (the class count of targets that have
  no names, e.g. integer labels), ``target_values(name) -> list`` (every
  sample's label without decoding, for stratified splits and label
  counts), ``split`` (the split held, or None when the data has no splits
  and every split is every sample: the runner then warns that evaluation
  data is training data) and ``skipped_samples: list[(id, reason)]``.

A *streamed* dataset (data larger than the disk or memory: a remote
``datasets`` stream, WebDataset shards read front to back) keeps those
facts but replaces random access by ``iter_indices(indices) -> Iterator``:
the samples at the given *ascending* positions, in that order, reading
through the others without decoding them. Its ``__len__`` comes from a
counting pass (or metadata), so ranks still split a split into contiguous
parts and evaluation covers every sample exactly once, in the order one
process sees. :mod:`polymodal.streaming` (``iter_samples``, ``batch_loader``)
serves both kinds, so trainers and axes need no ``if`` on the reader.

A modality (built by a ``modalities`` plugin) turns one raw value into a
tensor and a list of tensors into a padded :class:`ModalityBatch`. The
:class:`Collator` applies them per field, so with DataLoader workers the
decoding and preprocessing run in the workers, in parallel.

For modality and dataset plugins (component API): :class:`AudioClip` (a
decoded waveform) and :func:`resolve_inside` (a sample path that cannot
escape the dataset root).
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from polymodal.batch import Batch, ModalityBatch
from polymodal.errors import DataError, PolymodalError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from polymodal.plugins import Plugins


def resolve_inside(root: str | os.PathLike[str] | None, value: str | os.PathLike[str], *, what: str = "") -> Path:
    """Resolve ``value`` against ``root`` and check that it stays inside it.

    Datasets come from other people: a manifest row saying ``../../etc/passwd``,
    an absolute path, or a symlink pointing outside the dataset folder must be
    refused rather than read, so every reader resolves sample paths here.

    Symlinks are followed before checking, so a link inside the root that
    points outside is refused too. With ``root=None`` (a value given
    directly by the user, not by a dataset file) the path is only resolved.
    ``what`` prefixes error messages (e.g. ``"dataset 'coco', sample 12"``).
    """
    prefix = f"{what}: " if what else ""
    text = os.fspath(value)
    if "\x00" in text:
        raise DataError(f"{prefix}path {text!r} contains a NUL byte")
    if root is None:
        return Path(text).expanduser().resolve()
    base = Path(root).expanduser().resolve()
    candidate = Path(text)
    full = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if full != base and base not in full.parents:
        raise DataError(
            f"{prefix}path {text!r} resolves to {str(full)!r}, outside the dataset root {str(base)!r}; "
            f"sample paths must stay inside the root (no '..', absolute paths or symlinks leading out)"
        )
    return full


@runtime_checkable
class Modality(Protocol):
    """What a modality plugin's factory returns (see ``register_modalities``)."""

    name: str

    def load(self, value: Any, root: str | os.PathLike[str] | None = None) -> Any:
        """A raw value from a path (resolved inside ``root``) or an in-memory value."""

    def preprocess(self, raw: Any) -> torch.Tensor:
        """One sample's tensor, before padding."""

    def collate(self, values: Sequence[torch.Tensor | None]) -> ModalityBatch:
        """Pad a batch; ``None`` entries become all-false mask rows."""

    def configure(self, preprocess_config: Mapping[str, Any]) -> Modality:
        """Adopt an encoder's ``preprocess_config()`` (input size, mean/std, tokenizer), in place.

        Changes this object and returns it, so ``m.configure(cfg)`` and
        ``m = m.configure(cfg)`` mean the same: a caller that drops the
        return value can never keep feeding the old preprocessing.
        """

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the preprocessing in effect."""

    # Optional (not part of the checked protocol):
    #
    # ``preprocess_batch(raws: list[Any | None]) -> ModalityBatch | None``
    #     The whole field of a batch at once, from loaded raw values (``None``:
    #     missing). It must give exactly ``collate([preprocess(r) ...])``; it
    #     exists because per-sample work (a tensor per image, a check per
    #     clip) costs more than the arithmetic on small samples. Return None
    #     for values it does not batch (mixed sizes, files of other formats):
    #     the :class:`Collator` then runs ``preprocess`` per sample, as it
    #     does when the method raises (so errors still name the sample).


@attrs.frozen
class AudioClip:
    """Raw audio: ``samples`` as float32 ``[channels, length]`` and its sample rate."""

    samples: np.ndarray
    sample_rate: int


def _target_tensor(name: str, values: list[Any]) -> Any:
    """Numbers become a tensor; anything else (strings, reference lists) stays a list."""
    import numbers

    import torch

    if all(isinstance(v, bool | numbers.Integral) for v in values):
        return torch.as_tensor([int(v) for v in values], dtype=torch.long)
    if all(isinstance(v, numbers.Real) for v in values):
        return torch.as_tensor([float(v) for v in values], dtype=torch.float32)
    if all(isinstance(v, torch.Tensor) for v in values):
        try:
            return torch.stack(values)
        except RuntimeError:
            return values
    return values


class Collator:
    """DataLoader ``collate_fn``: samples (dicts) -> :class:`Batch`.

    ``modalities`` maps a sample field to the modality that handles it.
    ``targets`` are copied into ``Batch.targets`` (ints -> long tensor,
    floats -> float tensor, anything else as a list). ``None`` items (left by
    a dataset that skips bad samples lazily) are dropped. Errors name the
    dataset, the sample id and the field.
    """

    def __init__(
        self,
        modalities: Mapping[str, Modality],
        targets: Sequence[str] = (),
        *,
        root: str | os.PathLike[str] | None = None,
        dataset_name: str = "",
    ) -> None:
        self.modalities = dict(modalities)
        self.targets = list(targets)
        self.root = root
        self.dataset_name = dataset_name

    def _where(self, item_id: Any, field: str) -> str:
        ds = f"dataset {self.dataset_name!r}, " if self.dataset_name else ""
        return f"{ds}sample {item_id!r}, field {field!r}"

    def __call__(self, items: Sequence[Mapping[str, Any] | None]) -> Batch:
        present = [it for it in items if it is not None]
        ids = [it.get("id", i) for i, it in enumerate(present)]
        inputs = {field: self.field(field, present, ids) for field in self.modalities}
        targets: dict[str, Any] = {}
        for name in self.targets:
            values = []
            for item_id, item in zip(ids, present, strict=True):
                if name not in item:
                    ds = f"dataset {self.dataset_name!r}, " if self.dataset_name else ""
                    raise DataError(f"{ds}sample {item_id!r}: missing target {name!r} (has: {', '.join(sorted(item))})")
                values.append(item[name])
            targets[name] = _target_tensor(name, values)
        return Batch(inputs=inputs, targets=targets, ids=ids)

    def field(self, field: str, items: Sequence[Mapping[str, Any]], ids: Sequence[Any] | None = None) -> ModalityBatch:
        """One field of the batch of ``items`` (no ``None`` items), exactly as ``__call__`` makes it.

        Fields are collated independently, so an axis that changed one field
        of clean samples (a corruption) recollates only that field and keeps
        the clean batch's others.
        """
        modality = self.modalities[field]
        ids = [it.get("id", i) for i, it in enumerate(items)] if ids is None else ids
        batched = getattr(modality, "preprocess_batch", None)
        if callable(batched):
            raws = [None if item.get(field) is None else self._step(modality.load, item_id, field, modality,
                                                                     item.get(field), self.root)
                    for item_id, item in zip(ids, items, strict=True)]
            try:
                out = batched(raws)
            except Exception:  # noqa: BLE001 - the per-sample path below names the sample that fails
                out = None
            if out is not None:
                return out
            return modality.collate([None if raw is None else self._step(modality.preprocess, item_id, field,
                                                                         modality, raw)
                                     for item_id, raw in zip(ids, raws, strict=True)])
        values = []
        for item_id, item in zip(ids, items, strict=True):
            value = item.get(field)
            values.append(None if value is None else self._step(
                lambda v: modality.preprocess(modality.load(v, self.root)), item_id, field, modality, value))
        return modality.collate(values)

    def _step(self, fn: Any, item_id: Any, field: str, modality: Modality, *args: Any) -> Any:
        """``fn(*args)`` for one sample; a failure becomes a :class:`DataError` naming the sample and field."""
        try:
            return fn(*args)
        except PolymodalError as exc:
            raise DataError(f"{self._where(item_id, field)}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - turned into a message naming the sample
            raise DataError(
                f"{self._where(item_id, field)}: cannot preprocess as {modality.name}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def is_streamed(dataset: Any) -> bool:
    """Whether ``dataset`` is read front to back (it declares ``iter_indices``) rather than by index."""
    return callable(getattr(dataset, "iter_indices", None))


def dataset_texts(dataset: Any, field: str) -> list[str]:
    """All texts of ``field``: via ``dataset.texts(field)`` when offered, else by iterating."""
    texts = getattr(dataset, "texts", None)
    if callable(texts):
        return list(texts(field))
    from polymodal.streaming import iter_samples

    out = []
    for item in iter_samples(dataset, range(len(dataset))):
        if item is not None and isinstance(item.get(field), str):
            out.append(item[field])
    return out


def build_modalities(
    fields: Mapping[str, str],
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    plugins: Plugins | None = None,
) -> dict[str, Modality]:
    """One modality object per field, built from the registered modality plugins.

    ``params`` maps a field (or a modality kind, as a fallback) to factory
    keyword arguments, e.g. ``{"image": {"size": 64}, "text": {"max_length": 16}}``.
    """
    if plugins is None:
        from polymodal.plugins import get_plugins

        plugins = get_plugins()
    params = params or {}
    return {
        field: plugins.build("modalities", kind, **dict(params.get(field, params.get(kind, {}))))
        for field, kind in fields.items()
    }


def fit_modalities(modalities: Mapping[str, Modality], dataset: Any) -> None:
    """Fit every modality that learns from data (a word vocabulary) on ``dataset``.

    Call it on the *training* split only; reuse the fitted modalities (or
    their saved vocabulary) for the other splits.
    """
    for field, modality in modalities.items():
        if getattr(modality, "needs_fit", False):
            modality.fit(dataset_texts(dataset, field))  # type: ignore[attr-defined]


def make_loader(
    dataset: Any,
    modalities: Mapping[str, Modality],
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    targets: Sequence[str] | None = None,
    drop_last: bool = False,
    sampler: Any = None,
    fields: Sequence[str] | None = None,
) -> DataLoader:
    """A ``torch.utils.data.DataLoader`` yielding :class:`Batch` objects.

    ``fields`` restricts which modality fields are loaded (default: every
    field that has a modality). Shuffling is seeded, so runs repeat.
    """
    import torch
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    chosen = dict(modalities) if fields is None else {f: modalities[f] for f in fields}
    collator = Collator(
        chosen,
        list(getattr(dataset, "targets", [])) if targets is None else targets,
        root=getattr(dataset, "root", None),
        dataset_name=str(getattr(dataset, "name", "")),
    )
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collator,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=num_workers > 0,
    )
