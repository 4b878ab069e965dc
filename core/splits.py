"""Seeded, stratified splits of one dataset, for data that comes without splits.

``[data] split = { train = 0.8, val = 0.1, test = 0.1, seed = 0 }`` builds
the dataset once (every sample) and divides it here: within each class of
the stratifying target, samples are shuffled with ``seed`` and cut at the
cumulative fractions, starting from a random offset so that rounding in
small classes does not always favour the first split. Every sample lands
in at most one split (exactly one when the fractions sum to 1), and the
same seed gives the same split on every machine. Pure Python: no torch.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from polymodal.errors import ConfigError


@attrs.frozen
class SplitSpec:
    """Fractions per split name (in the order given) and the shuffling seed."""

    fractions: dict[str, float]
    seed: int = 0


def parse_split(value: Mapping[str, Any], where: str = "data.split") -> SplitSpec:
    """A :class:`SplitSpec` from the TOML table; a :class:`ConfigError` naming the key when it is wrong."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a table like {{ train = 0.8, val = 0.1, test = 0.1, seed = 0 }}")
    seed = value.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{where}.seed: expected an integer, got {seed!r}")
    fractions: dict[str, float] = {}
    for name, frac in value.items():
        if name == "seed":
            continue
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 < frac <= 1:
            raise ConfigError(f"{where}.{name}: expected a fraction in (0, 1], got {frac!r}")
        fractions[str(name)] = float(frac)
    if not fractions:
        raise ConfigError(f"{where}: name at least one split with its fraction, e.g. train = 0.8")
    total = sum(fractions.values())
    if total > 1 + 1e-9:
        raise ConfigError(f"{where}: fractions sum to {total:g}, more than 1")
    return SplitSpec(fractions, seed)


def split_indices(labels: Sequence[Any], spec: SplitSpec) -> dict[str, list[int]]:
    """Indices per split; ``labels`` (one per sample, hashable) are the strata.

    Pass the same label for every sample (e.g. ``[None] * n``) for a plain
    seeded split. Each split's indices are sorted, so reading stays sequential.
    """
    rng = random.Random(spec.seed)
    groups: dict[Any, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    names = list(spec.fractions)
    bounds = []
    acc = 0.0
    for name in names:
        acc += spec.fractions[name]
        bounds.append(acc)
    out: dict[str, list[int]] = {name: [] for name in names}
    for key in sorted(groups, key=repr):
        members = groups[key]
        rng.shuffle(members)
        offset = rng.random()
        n = len(members)
        for k, index in enumerate(members):
            position = (k + offset) / n
            for name, bound in zip(names, bounds, strict=True):
                if position < bound - 1e-12:
                    out[name].append(index)
                    break
    return {name: sorted(idx) for name, idx in out.items()}


class SplitView:
    """The samples ``indices`` of ``dataset``, with the dataset's facts (fields, targets, classes) passed through.

    ``dataset`` and ``indices`` have ``torch.utils.data.Subset``'s names, so
    code that unwraps subsets to reach ``class_names`` unwraps this too.
    """

    def __init__(self, dataset: Any, indices: Sequence[int], split: str):
        self.dataset = dataset
        self.indices = list(indices)
        self.split = split

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[self.indices[i]]

    def __getattr__(self, name: str) -> Any:
        # Guarded so that unpickling in DataLoader workers (before __dict__ is set) cannot recurse.
        if name.startswith("__") or name in ("dataset", "indices", "split", "iter_indices"):
            raise AttributeError(name)  # iter_indices of the whole would read the wrong samples
        return getattr(self.dataset, name)

    def texts(self, field: str) -> list[str]:
        """This split's texts only (the vocabulary must not see evaluation captions)."""
        import inspect

        texts = getattr(self.dataset, "texts", None)
        if callable(texts) and "indices" in inspect.signature(texts).parameters:
            return list(texts(field, indices=self.indices))
        return [item[field] for item in _samples(self) if item is not None and isinstance(item.get(field), str)]

    def target_values(self, name: str) -> list[Any]:
        values = getattr(self.dataset, "target_values", None)
        if callable(values):
            every = values(name)
            return [every[i] for i in self.indices]
        return [s.get(name) for s in _samples(self)]


def _samples(dataset: Any) -> Any:
    from polymodal.streaming import iter_samples

    return iter_samples(dataset, range(len(dataset)))


class StreamedSplitView(SplitView):
    """A split of a streamed dataset (see :mod:`polymodal.streaming`): its positions map onto the whole's."""

    def __getitem__(self, i: int) -> Any:
        raise TypeError(f"split {self.split!r} of a streamed dataset is read in order (iter_indices), not by index")

    def iter_indices(self, indices: Any) -> Any:
        return self.dataset.iter_indices(self.indices[i] for i in indices)


def split_view(dataset: Any, indices: Sequence[int], split: str) -> SplitView:
    """The right view of ``dataset`` for a split: a streamed dataset keeps reading in order."""
    from polymodal.data import is_streamed

    return (StreamedSplitView if is_streamed(dataset) else SplitView)(dataset, indices, split)


def target_values(dataset: Any, name: str) -> list[Any]:
    """Every sample's ``name`` target: the dataset's cheap ``target_values`` when it has one, else by loading."""
    values = getattr(dataset, "target_values", None)
    if callable(values):
        return list(values(name))
    return [s.get(name) for s in _samples(dataset)]


__all__ = ["SplitSpec", "SplitView", "StreamedSplitView", "parse_split", "split_indices", "split_view", "target_values"]
