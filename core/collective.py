"""Cross-rank reductions for evaluation axes under ``torchrun``.

Metrics built on torchmetrics synchronise themselves (their states declare
``dist_reduce_fx`` sum or cat). These helpers are for the rest: an axis that
counts plain numbers, keeps a running maximum, or needs everybody's Python
objects (captions, ids) for a corpus-level score. Outside ``torchrun`` (one
process, no process group) every function returns its input unchanged, so an
axis written with them is the same code in both cases.

All of them are collective: every rank must call them, in the same order,
the same number of times. Call them after the loop over an axis's own shard,
never inside it -- shards differ in length by one sample, so per-batch
collectives would leave one rank waiting for a batch the others never have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def active() -> bool:
    """Whether a process group with more than one rank is running."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed support
        return False
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _comm_device(device: Any = None) -> Any:
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return device if device is not None and torch.device(device).type == "cuda" else \
            torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _reduce(values: Any, op: str, device: Any = None) -> Any:
    if not active():
        return values
    import torch
    import torch.distributed as dist

    if isinstance(values, Mapping):
        keys = sorted(values, key=repr)
        reduced = _reduce([values[k] for k in keys], op, device)
        return dict(zip(keys, reduced, strict=True))
    if isinstance(values, torch.Tensor):
        out = values.detach().to(_comm_device(device), dtype=torch.float64).clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return out.to(values.device, dtype=values.dtype)
    scalar = not isinstance(values, (list, tuple))
    flat = torch.tensor([float(values)] if scalar else [float(v) for v in values], dtype=torch.float64,
                        device=_comm_device(device))
    if flat.numel():
        dist.all_reduce(flat, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    result = flat.tolist()
    return result[0] if scalar else result


def all_reduce_sum(values: T, device: Any = None) -> T:
    """The sum over ranks of a number, a list of numbers, a dict of numbers, or a tensor.

    Numbers come back as floats (summed in float64, so counts stay exact).
    """
    return _reduce(values, "sum", device)


def all_reduce_max(values: T, device: Any = None) -> T:
    """The maximum over ranks, in the same shapes as :func:`all_reduce_sum`."""
    return _reduce(values, "max", device)


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable, produced in this process), in rank order; ``[obj]`` alone.

    With contiguous shards (:meth:`polymodal.evaluation.AxisContext.shard`),
    concatenating the per-rank lists in rank order restores the split's order.
    """
    if not active():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_cat(items: list[T]) -> list[T]:
    """This rank's list of per-sample items joined with every other rank's, in rank (= split) order."""
    return [x for part in all_gather_object(items) for x in part]


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if active():
        import torch.distributed as dist

        dist.barrier()


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself in one process)."""
    if not active():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


__all__ = ["active", "all_gather_object", "all_reduce_max", "all_reduce_sum", "barrier", "broadcast_object",
           "gather_cat"]
