"""Batches for training: datasets, modalities and a resumable, seeded order.

:class:`TrainingData` is all the trainer needs: per-epoch training batches in
an order fixed by ``(seed, epoch)`` that can start part-way through an epoch
(for ``--resume``), and evaluation batches per split. :func:`from_experiment`
builds one from the ``[data]`` table through the dataset and modality plugins
(:mod:`polymodal.data`); tests hand in any dataset and collate function.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from polymodal.batch import Batch
from polymodal.errors import ConfigError, DataError
from polymodal.experiment import DataConfig, ExperimentConfig
from polymodal.model_api import FieldInfo, TargetInfo
from polymodal.streaming import batch_loader, is_streamed, limit_dataset
from polymodal.traits import traits_of


class TrainingData:
    """Datasets per split with one collate function; seeded, skippable epochs."""

    def __init__(self, splits: dict[str, Any], collate: Callable[[list[Any]], Batch], cfg: DataConfig, seed: int):
        if cfg.train_split not in splits:
            raise ConfigError(f"data.train_split: no split {cfg.train_split!r} (have: {', '.join(splits)})")
        self.cfg = cfg
        self.seed = seed
        self.collate = collate
        #: Warnings about the data (shared splits, skipped samples) for the console and the report.
        self.notes: list[str] = []
        #: Samples the readers dropped, per split: ``[{"id", "reason"}]``.
        self.skipped: dict[str, list[dict[str, Any]]] = {}
        self.splits = {name: (limit_dataset(ds, cfg.limit) if cfg.limit else ds) for name, ds in splits.items()}
        if len(self.splits[cfg.train_split]) == 0:
            raise DataError(f"data: training split {cfg.train_split!r} of dataset {cfg.dataset!r} is empty")

    def _batches(self, order: list[int], size: int, drop_last: bool) -> list[list[int]]:
        out = [order[i:i + size] for i in range(0, len(order), size)]
        if drop_last and out and len(out[-1]) < size:
            out.pop()
        return out

    def train_order(self, epoch: int) -> list[list[int]]:
        """Index batches of one epoch; a pure function of ``(seed, epoch)``."""
        train = self.splits[self.cfg.train_split]
        n = len(train)
        if self.cfg.shuffle and is_streamed(train):
            order = window_shuffle(n, int(getattr(train, "shuffle_window", DEFAULT_SHUFFLE_WINDOW)),
                                   self.seed * 1_000_003 + epoch)
        elif self.cfg.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        return self._batches(order, self.cfg.batch_size, self.cfg.drop_last)

    def steps_per_epoch(self) -> int:
        return len(self.train_order(0))

    def train_batches(self, epoch: int, skip: int = 0) -> Iterable[Batch]:
        """Training batches of ``epoch``, starting after the first ``skip``."""
        return self._loader(self.cfg.train_split, self.train_order(epoch)[skip:])

    def eval_batches(self, split: str | None) -> Iterable[Batch] | None:
        if split is None or split not in self.splits:
            return None
        n = len(self.splits[split])
        return self._loader(split, self._batches(list(range(n)), self.cfg.eval_batch_size or self.cfg.batch_size, False))

    def _loader(self, split: str, batches: Sequence[list[int]]) -> DataLoader:
        # A private generator: DataLoader otherwise draws its base seed from
        # the global RNG, which would make dropout depend on how often we iterate.
        g = torch.Generator()
        g.manual_seed(self.seed)
        return batch_loader(self.splits[split], batches, self.collate, num_workers=self.cfg.workers, generator=g)


#: Samples a streamed training split is shuffled within, unless the dataset declares ``shuffle_window``.
DEFAULT_SHUFFLE_WINDOW = 1024


def window_shuffle(n: int, window: int, seed: int) -> list[int]:
    """A seeded order of ``0..n`` in which each position moves only within its window of ``window`` samples.

    Why windows: a streamed dataset is read front to back, so a batch may
    only draw from samples near each other; the reader then holds at most
    about a window of decoded samples (see :class:`polymodal.streaming.BatchStream`).
    The windows keep their order: visiting a later one first would make the
    reader hold every sample before it.
    """
    g = torch.Generator()
    g.manual_seed(seed)
    window = max(1, window)
    order: list[int] = []
    for start in range(0, n, window):
        stop = min(n, start + window)
        order += [start + i for i in torch.randperm(stop - start, generator=g).tolist()]
    return order


def from_experiment(config: ExperimentConfig, plugins: Any, source: str) -> tuple[TrainingData, dict[str, FieldInfo], dict[str, TargetInfo], dict[str, Any]]:
    """Datasets, fitted modalities and the data description from ``[data]``.

    Returns the training data, the field and target descriptions for the
    :class:`~polymodal.model_api.ModelContext`, and the modality objects (so
    the caller can configure them from the encoders' ``preprocess_config``).
    """
    from polymodal import data as pdata

    cfg = config.data
    splits = build_splits(config, plugins, source)
    train = splits[cfg.train_split]
    available: dict[str, str] = dict(getattr(train, "fields", {}))
    wanted = list(cfg.fields) if cfg.fields is not None else model_fields(config) or list(available)
    for f in wanted:
        if f not in available:
            from polymodal.errors import did_you_mean

            raise ConfigError(f"{source}: model.encoders.{f}: dataset {cfg.dataset!r} has no field {f!r}"
                              f"{did_you_mean(f, available)}; its fields: {', '.join(available) or 'none'}")
    modalities = pdata.build_modalities({f: available[f] for f in wanted}, cfg.modalities, plugins=plugins)
    pdata.fit_modalities(modalities, train)
    fields = {f: FieldInfo(f, available[f], _describe(m)) for f, m in modalities.items()}
    class_names = dict(getattr(train, "class_names", {}) or {})
    counts = dict(getattr(train, "num_classes", {}) or {})
    targets = {}
    for t in getattr(train, "targets", []):
        labels = class_names.get(t)
        count = len(labels) if labels else counts.get(t)
        targets[t] = TargetInfo(t, count, list(labels) if labels else None)
    collate = pdata.Collator(modalities, list(getattr(train, "targets", [])), root=getattr(train, "root", None),
                             dataset_name=cfg.dataset)
    data = TrainingData(splits, collate, cfg, config.train.seed)
    data.notes = data_notes(cfg, splits)
    data.skipped = skipped_samples(cfg, splits)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once rather than once per rank
        for note in data.notes:
            print(f"polymodal: warning: {note}", file=sys.stderr, flush=True)
    return data, fields, targets, modalities


def build_splits(config: ExperimentConfig, plugins: Any, source: str) -> dict[str, Any]:
    """One dataset per split: asked of the dataset plugin, or cut here by ``data.split``."""
    cfg = config.data
    kwargs = dict(cfg.params)
    if cfg.root is not None:
        kwargs["root"] = cfg.root
    wanted = list(dict.fromkeys(s for s in (cfg.train_split, cfg.val_split, cfg.test_split) if s))
    if cfg.split is not None:
        from polymodal.splits import parse_split, split_indices, split_view, target_values

        spec = parse_split(cfg.split, f"{source}: data.split")
        if cfg.train_split not in spec.fractions:
            raise ConfigError(f"{source}: data.split: no fraction for the training split {cfg.train_split!r}")
        try:
            whole = plugins.build("datasets", cfg.dataset, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"{source}: data.params: dataset {cfg.dataset!r}: {exc}") from None
        target = config.model.target
        stratify = target in (getattr(whole, "class_names", {}) or {}) or target in (getattr(whole, "num_classes", {}) or {})
        labels = target_values(whole, target) if stratify else [None] * len(whole)
        parts = split_indices(labels, spec)
        return {name: split_view(whole, parts[name], name) for name in wanted if name in spec.fractions}
    splits: dict[str, Any] = {}
    for split in wanted:
        try:
            splits[split] = plugins.build("datasets", cfg.dataset, split=split, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"{source}: data.params: dataset {cfg.dataset!r}: {exc}") from None
        except DataError as exc:
            if split == cfg.train_split:
                raise
            key = "val_split" if split == cfg.val_split else "test_split"
            raise DataError(f"{exc} (for no {split!r} split, set data.{key} = false; to make one, "
                            f"data.split = {{ train = 0.8, val = 0.1, test = 0.1, seed = 0 }})") from None
    return splits


def data_notes(cfg: DataConfig, splits: dict[str, Any]) -> list[str]:
    """What the user must know about the data before trusting a figure: shared splits, skipped samples.

    A reader that returns every sample whatever split it is asked for says
    so with ``split = None``; evaluating on such a split measures training fit.
    """
    notes = []
    for name in (cfg.val_split, cfg.test_split):
        ds = splits.get(name) if name else None
        if ds is not None and name != cfg.train_split and hasattr(ds, "split") and ds.split is None:
            notes.append(f"data: the {name!r} split of dataset {cfg.dataset!r} is the training data (the data "
                         f"has no {name!r} split), so its figures measure fit, not generalisation; set "
                         f"data.split = {{ train = 0.8, val = 0.1, test = 0.1, seed = 0 }} for held-out splits")
    for name, skipped in skipped_samples(cfg, splits).items():
        shown = "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:MAX_LISTED])
        more = f" (and {len(skipped) - MAX_LISTED} more, listed in manifest.json)" if len(skipped) > MAX_LISTED else ""
        notes.append(f"data: skipped {len(skipped)} sample(s) of split {name!r} that failed to load: {shown}{more}")
    return notes


#: Skipped samples listed in a console line; the manifest lists all of them.
MAX_LISTED = 5


def skipped_samples(cfg: DataConfig, splits: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per split, the samples the reader dropped (``on_error = "skip"``) with the reason.

    A split that is the training data again (``split`` None) is not listed twice.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    seen: set[int] = set()
    for name, ds in splits.items():
        if name != cfg.train_split and getattr(ds, "split", "") is None:
            continue
        base = getattr(ds, "dataset", None) if hasattr(ds, "indices") else None
        source = base if base is not None else ds
        if id(source) in seen:
            continue  # one dataset cut into several splits: its skipped samples once
        seen.add(id(source))
        rows = [{"id": sid, "reason": reason} for sid, reason in getattr(source, "skipped_samples", []) or []]
        if rows:
            out[name if base is None else "all"] = rows
    return out


def model_fields(config: ExperimentConfig) -> list[str]:
    """Fields the model config names: encoder tables and ``params.*_field``.

    Loading only these keeps a captioner from decoding audio and video it
    never reads. Empty when the config names none (then every field loads).
    """
    m = config.model
    names = list(m.encoders)
    for key, value in m.params.items():
        if key.endswith("_field") and isinstance(value, str):
            names.append(value)
        elif key.endswith("_fields") and isinstance(value, list):
            names += [v for v in value if isinstance(v, str)]
    return list(dict.fromkeys(names))


def _describe(modality: Any) -> dict[str, Any]:
    """The modality's own description plus the facts :class:`FieldInfo` promises models.

    Text: ``vocab_size``, ``pad_id``, and for a fitted word vocabulary its
    ``vocab`` tokens and ``special_ids`` (so captions decode from the
    checkpoint alone). Modalities with space dimensions (images, frames):
    ``image_size`` and ``channels`` (3 unless the modality says otherwise).
    """
    describe = getattr(modality, "describe", None)
    try:
        out = dict(describe()) if callable(describe) else {}
    except Exception:  # noqa: BLE001 - a description is informative only
        out = {}
    traits = traits_of(modality)
    if traits.textual or hasattr(modality, "pad_id"):
        try:
            out.setdefault("pad_id", int(modality.pad_id))
        except Exception:  # noqa: BLE001 - no vocabulary yet
            pass
        vocab = getattr(modality, "vocab", None)
        tokens = getattr(vocab, "tokens", None)
        if tokens is not None:
            out["vocab"] = list(tokens)
            out["special_ids"] = [i for i in (getattr(vocab, a, None) for a in ("pad_id", "unk_id", "bos_id", "eos_id"))
                                  if isinstance(i, int)]
    size = out.get("size")
    if traits.space_dims and isinstance(size, (list, tuple)) and size:  # a modality may set its own channels
        out.setdefault("image_size", int(size[0]))
        out.setdefault("channels", 3)
    return out
