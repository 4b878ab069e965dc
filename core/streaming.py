"""Streamed datasets: the samples of data too large for the disk or memory, read front to back.

A streamed dataset (a remote ``datasets`` stream, WebDataset shards) has the
facts of any dataset (``fields``, ``targets``, ``class_names`` ... see
:mod:`polymodal.data`) and ``__len__``, but instead of ``__getitem__`` it
declares ``iter_indices(indices) -> Iterator``: the samples at the given
*ascending* positions, in that order, reading past the others without
decoding them. Its length comes from a counting pass (or metadata), which
is what lets everything else stay as it is: ranks still take contiguous
parts of a split (``AxisContext.shard``), so evaluation covers every sample
exactly once and in the order of one process, and training batches are the
same index batches as for map-style data.

Consumers never ask which kind they hold: :func:`iter_samples` reads
positions from either, :func:`batch_loader` makes the DataLoader for either,
and :func:`limit_dataset` cuts either to its first ``n`` samples.
"""

from __future__ import annotations

import heapq
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from polymodal.batch import Batch
from polymodal.data import is_streamed
from polymodal.errors import DataError


def iter_samples(dataset: Any, indices: Iterable[int]) -> Iterator[Any]:
    """The samples at ascending ``indices``, in order: one pass over a streamed dataset, else by index."""
    if is_streamed(dataset):
        yield from dataset.iter_indices(indices)
        return
    for i in indices:
        yield dataset[i]


class StreamLimit:
    """The first ``n`` samples of a streamed dataset (``--limit`` / ``data.limit``), facts passed through."""

    def __init__(self, dataset: Any, n: int):
        self.dataset = dataset
        self.n = min(int(n), len(dataset))

    def __len__(self) -> int:
        return self.n

    def iter_indices(self, indices: Iterable[int]) -> Iterator[Any]:
        return self.dataset.iter_indices(i for i in indices if i < self.n)

    def __getattr__(self, name: str) -> Any:
        # Guarded so that unpickling in DataLoader workers (before __dict__ is set) cannot recurse.
        if name.startswith("__") or name in ("dataset", "n"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def limit_dataset(dataset: Any, n: int) -> Any:
    """The first ``n`` samples of ``dataset``: a ``Subset`` of a map-style one, a :class:`StreamLimit` of a stream."""
    if is_streamed(dataset):
        return StreamLimit(dataset, n)
    from torch.utils.data import Subset

    return Subset(dataset, range(min(n, len(dataset))))


def _same(batch: Any) -> Any:
    return batch


class BatchStream(IterableDataset):
    """Collated batches of a streamed dataset for a ``DataLoader(..., batch_size=None)``.

    ``batches`` are lists of sample positions (one list per batch, as a
    ``batch_sampler`` gives). DataLoader worker ``w`` of ``W`` builds batches
    ``w, w+W, ...``: it reads the stream once, decoding only its batches'
    samples and holding each only until its batch is complete, so memory is
    bounded by the batch (plus, for a shuffled order, the shuffle window).
    The DataLoader takes batches from its workers in turn, so they arrive in
    exactly the order of ``batches``, as with map-style data.
    """

    def __init__(self, dataset: Any, batches: Sequence[Sequence[int]], collate: Any):
        self.dataset = dataset
        self.batches = batches
        self.collate = collate

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.batches[worker::workers]
        read: deque[int] = deque()  # positions asked of the stream, in the order its samples come
        stream = iter_samples(self.dataset, _record(ascending_positions(mine), read))
        held: dict[int, Any] = {}
        for batch in mine:
            for i in batch:
                while i not in held:
                    sample = next(stream, _END)
                    if sample is _END:
                        name = getattr(self.dataset, "name", type(self.dataset).__name__)
                        raise DataError(f"dataset {name!r}: the stream ended before sample {i} "
                                        f"(it declared {len(self.dataset)} samples)")
                    held[read.popleft()] = sample
            yield self.collate([held.pop(i) for i in batch])


_END = object()


def _record(positions: Iterator[int], into: deque[int]) -> Iterator[int]:
    for p in positions:
        into.append(p)
        yield p


def ascending_positions(batches: Sequence[Sequence[int]]) -> Iterator[int]:
    """Every position of ``batches`` in ascending order, looking only as far ahead as it must.

    A batch is taken in once no later batch can hold a smaller position
    (the suffix minima say so), so for an order shuffled within windows only
    about a window of positions is pending, never the whole epoch.
    """
    suffix_min = [0] * (len(batches) + 1)
    suffix_min[-1] = sys.maxsize
    for k in range(len(batches) - 1, -1, -1):
        suffix_min[k] = min(min(batches[k], default=sys.maxsize), suffix_min[k + 1])
    pending: list[int] = []
    taken = 0
    while True:
        while taken < len(batches) and (not pending or suffix_min[taken] <= pending[0]):
            for i in batches[taken]:
                heapq.heappush(pending, i)
            taken += 1
        if not pending:
            return
        yield heapq.heappop(pending)


def batch_loader(dataset: Any, batches: Sequence[Sequence[int]], collate: Any, *, num_workers: int = 0,
                 generator: Any = None) -> DataLoader:
    """A DataLoader over index ``batches`` of any dataset: a ``batch_sampler`` by index, a :class:`BatchStream`
    for a streamed one (same batches, same order)."""

    if not is_streamed(dataset):
        return DataLoader(dataset, batch_sampler=list(batches), collate_fn=collate, num_workers=num_workers,
                          generator=generator)
    return DataLoader(BatchStream(dataset, batches, collate), batch_size=None, collate_fn=_same,
                      num_workers=num_workers, generator=generator)


__all__ = ["BatchStream", "StreamLimit", "ascending_positions", "batch_loader", "is_streamed", "iter_samples", "limit_dataset"]
