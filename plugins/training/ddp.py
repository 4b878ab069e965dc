"""Training under ``torchrun``: DistributedDataParallel over the ordinary trainer.

Why a subclass and not a second loop: every strategy, schedule, checkpoint
and resume rule of :class:`~polymodal_plugins.training.trainer.Trainer` must
hold under DDP too, so :class:`DistributedTrainer` changes only four things:

* **data** -- every rank walks the same *global* batches (their order is a
  pure function of ``(seed, epoch)`` in ``TrainingData``) and keeps its own
  contiguous part of each (:class:`RankBatches`), so ``world_size`` processes
  together see exactly what one process would;
* **gradients** -- the strategy's loss runs inside a
  :class:`torch.nn.parallel.DistributedDataParallel` wrapper, which averages
  gradients across ranks during ``backward``. DDP averages the ranks' *mean*
  losses; when a global batch does not split evenly (5 samples on 2 ranks) that
  is not the global mean, so each rank's loss is scaled by
  ``local_n * world_size / global_n`` first. For losses that are a mean over
  samples (cross-entropy of a classifier) the averaged gradient is then exactly
  the single-process one. Losses that couple samples (in-batch contrastive
  negatives) or average over tokens see per-rank batches, as in any DDP
  training: their weights stay close to, not equal to, a single-process run;
* **logs** -- per-step figures (loss, accuracy) are averaged across ranks with
  the same sample weights, so ``metrics.jsonl`` reads as a single-process log;
* **files** -- only rank 0 writes checkpoints, metrics and the summary; every
  save ends with a barrier so no rank reads a half-written checkpoint. Resume
  reads the checkpoint on every rank (a filesystem all ranks share, as
  ``torchrun`` multi-node set-ups have for their output folder).

Use :func:`make_trainer`: a plain :class:`Trainer` outside ``torchrun``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from polymodal.errors import ConfigError
from polymodal.experiment import ExperimentConfig
from polymodal.model_api import ModelContext, PolymodalModel
from polymodal_plugins.training.data_source import TrainingData
from polymodal_plugins.training.trainer import Trainer


def is_distributed() -> bool:
    """Whether a default process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_part(indices: list[int], rank: int, world_size: int) -> list[int]:
    """The contiguous part of one global batch that ``rank`` trains on (sizes differ by at most one)."""
    per, extra = divmod(len(indices), world_size)
    start = rank * per + min(rank, extra)
    return indices[start:start + per + (1 if rank < extra else 0)]


class RankBatches:
    """A view of :class:`TrainingData` in which each training batch is this rank's part of the global one.

    Evaluation batches are left whole: per-epoch validation runs on every rank
    and gives every rank the same figures.
    """

    def __init__(self, data: TrainingData, rank: int, world_size: int):
        self.data = data
        self.rank = rank
        self.world_size = world_size

    def _check_split(self) -> None:
        # Checked when batches are drawn, not at construction: resuming a finished run (evaluation
        # only, e.g. --resume with more processes than training samples) draws none.
        smallest = min((len(b) for b in self.data.train_order(0)), default=0)
        if smallest < self.world_size:
            raise ConfigError(f"data.batch_size: a global batch of {smallest} sample(s) cannot be split over "
                              f"{self.world_size} processes; use batch_size >= {self.world_size} (and drop_last = "
                              "true if the last batch of an epoch is smaller)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.data, name)

    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch()

    def train_batches(self, epoch: int, skip: int = 0) -> Iterable[Any]:
        self._check_split()
        order = self.data.train_order(epoch)[skip:]
        parts = [rank_part(b, self.rank, self.world_size) for b in order]
        return self.data._loader(self.data.cfg.train_split, parts)

    def eval_batches(self, split: str | None) -> Iterable[Any] | None:
        return self.data.eval_batches(split)


class _LossModule(nn.Module):
    """The strategy's loss as a module, so DDP sees the forward pass it must synchronise."""

    def __init__(self, model: PolymodalModel):
        super().__init__()
        self.model = model
        self.strategy: Any = None

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        return self.strategy.loss(self.model, batch)


class DDPStrategy:
    """Wraps the run's strategy: loss through DDP, sample-weighted, logs averaged over ranks."""

    def __init__(self, inner: Any, model: PolymodalModel, device: torch.device):
        self.inner = inner
        self.name = getattr(inner, "name", "joint")
        self.model = model
        self.device = device
        self.world_size = dist.get_world_size()
        self._holder = _LossModule(model)
        self._holder.strategy = inner
        self._ddp: nn.parallel.DistributedDataParallel | None = None
        self._trainable: tuple[bool, ...] = ()

    def _wrapper(self) -> nn.parallel.DistributedDataParallel:
        # DDP fixes its gradient buckets at construction: when a staged strategy
        # freezes or unfreezes parameters, build a new wrapper for the new set.
        trainable = tuple(p.requires_grad for p in self.model.parameters())
        if self._ddp is None or trainable != self._trainable:
            ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] \
                if self.device.type == "cuda" else None
            self._ddp = nn.parallel.DistributedDataParallel(self._holder, device_ids=ids, broadcast_buffers=True,
                                                            find_unused_parameters=True)
            self._trainable = trainable
        return self._ddp

    def begin_epoch(self, model: PolymodalModel, epoch: int, optimizer: torch.optim.Optimizer) -> str:
        phase = self.inner.begin_epoch(model, epoch, optimizer)
        self._wrapper()
        return phase

    def loss(self, model: PolymodalModel, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        local = torch.tensor([float(len(batch))], dtype=torch.float64, device=self._comm_device())
        total = local.clone()
        dist.all_reduce(total)
        loss, logs = self._wrapper()(batch)
        scale = float(local) * self.world_size / float(total)
        # Sample-weighted mean of the per-rank figures: what one process would log for the global batch.
        keys = sorted(logs)
        figures = torch.tensor([float(logs[k]) * float(local) for k in keys], dtype=torch.float64,
                               device=self._comm_device())
        if keys:
            dist.all_reduce(figures)
        averaged = {k: float(v) / float(total) for k, v in zip(keys, figures.tolist(), strict=True)}
        return loss * scale, averaged

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def state(self) -> dict[str, torch.Tensor]:
        return self.inner.state()

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.inner.load_state(state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _NoStore:
    """What non-zero ranks write metrics to: nothing (rank 0 keeps the log)."""

    def append(self, row: Any) -> None:
        return None

    def repair(self) -> None:
        return None

    def read(self) -> list[Any]:
        return []

    def read(self) -> Iterator[Any]:
        return iter(())


class DistributedTrainer(Trainer):
    """:class:`Trainer` under DDP (see module docs); needs an initialised process group."""

    def __init__(self, config: ExperimentConfig, model: PolymodalModel, ctx: ModelContext, data: TrainingData,
                 out: str | Path, *, plugins: Any | None = None, progress: bool = True, **kw: Any):
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        sharded = RankBatches(data, self.rank, self.world_size)
        super().__init__(config, model, ctx, sharded, out, plugins=plugins,  # type: ignore[arg-type]
                         progress=progress and self.rank == 0, **kw)
        self.strategy = DDPStrategy(self.strategy, self.model, self.device)
        if self.rank != 0:
            self.store = _NoStore()  # type: ignore[assignment]

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def save(self) -> Path:
        path = self.checkpoint_dir
        if self.rank == 0:
            path = super().save()
        dist.barrier()
        return path

    def restore(self) -> bool:
        found = super().restore()
        # Every rank must agree; a rank on a filesystem without the checkpoint would silently start over.
        flags = torch.tensor([int(found)], device=self.strategy._comm_device())
        dist.all_reduce(flags)
        if int(flags) not in (0, self.world_size):
            raise ConfigError(f"--resume: only {int(flags)} of {self.world_size} processes can read the checkpoint "
                              f"in {self.checkpoint_dir}; the output folder must be on a filesystem all ranks share")
        return found


def make_trainer(config: ExperimentConfig, model: PolymodalModel, ctx: ModelContext, data: TrainingData,
                 out: str | Path, **kw: Any) -> Trainer:
    """A :class:`DistributedTrainer` under ``torchrun`` (initialised group), else a plain :class:`Trainer`."""
    if is_distributed():
        return DistributedTrainer(config, model, ctx, data, out, **kw)
    return Trainer(config, model, ctx, data, out, **kw)
