"""Cross-rank reductions for evaluation axes under ``torchrun``, each checked before it runs.

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

The guard. A rank that takes another path (an early return, a rank-0-only
branch that syncs a metric) used to leave the others waiting forever. Now
every collective polymodal issues first exchanges each rank's *position*
(the run and axis the runner set with :func:`set_position`, the call site,
and a sequence number): one small fixed-size gather. When the positions
differ every rank raises :class:`CollectiveMismatch` at once, naming each
rank's position; the runner records the run as failed and the suite goes on.
Every wait is bounded by :func:`timeout_seconds` (``POLYMODAL_COLLECTIVE_TIMEOUT``,
default 1800 s, also the process group's own timeout); when it expires the
rank raises :class:`CollectiveTimeout`, and since the group is then out of
step, every later collective fails at once with the same message.
:func:`guarded_metrics` routes torchmetrics' state synchronisation through
the same guard, and :func:`local` marks code that one rank runs alone
(collectives and metric syncs inside it are no-ops).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import attrs

from polymodal.errors import PolymodalError

T = TypeVar("T")

#: Seconds any collective may wait for the other ranks before :class:`CollectiveTimeout`.
DEFAULT_TIMEOUT_S = 1800.0
TIMEOUT_ENV = "POLYMODAL_COLLECTIVE_TIMEOUT"
#: Bytes of one rank's position record in the guard's gather (JSON, zero-padded).
_POSITION_BYTES = 512


class CollectiveMismatch(PolymodalError):
    """Ranks reached different collectives (another path was taken on some rank)."""


class CollectiveTimeout(PolymodalError):
    """A collective waited longer than the timeout for the other ranks."""


@attrs.define
class _State:
    run: str = ""
    axis: str = ""
    seq: int = 0
    local_depth: int = 0
    #: Set once a collective timed out: the group is out of step and every later collective fails.
    broken: str | None = None


_STATE = _State()


def timeout_seconds() -> float:
    """The collective timeout: ``POLYMODAL_COLLECTIVE_TIMEOUT`` seconds, else :data:`DEFAULT_TIMEOUT_S`."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise PolymodalError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None
    if value <= 0:
        raise PolymodalError(f"{TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return value


def set_position(run: str = "", axis: str = "") -> None:
    """Name where collectives are now issued (the runner calls it per run and axis); restarts the count."""
    # A ``local`` block left open by an abandoned generator must not silence the next axis's collectives.
    _STATE.run, _STATE.axis, _STATE.seq, _STATE.local_depth = run, axis, 0, 0


def reset() -> None:
    """Forget position and a broken group (a new process group starts clean)."""
    global _STATE
    _STATE = _State()


def broken() -> str | None:
    """The timeout message once a collective timed out (the group is then unusable), else None."""
    return _STATE.broken


@contextlib.contextmanager
def local() -> Iterator[None]:
    """Code this rank runs alone: collectives and torchmetrics syncs inside return local values."""
    _STATE.local_depth += 1
    try:
        yield
    finally:
        _STATE.local_depth -= 1


def _group_active() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed support
        return False
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def active() -> bool:
    """Whether a process group with more than one rank is running (and we are not in :func:`local`)."""
    return _STATE.local_depth == 0 and _group_active()


def _describe(pos: Mapping[str, Any]) -> str:
    where = " / ".join(p for p in (f"run {pos['run']}" if pos.get("run") else "",
                                    f"axis {pos['axis']}" if pos.get("axis") else "") if p) or "outside any axis"
    return f"{where}, {pos.get('site')} #{pos.get('seq')}"


def _wait(work: Any, site: str) -> None:
    seconds = timeout_seconds()
    try:
        work.wait(timeout=timedelta(seconds=seconds))
    except RuntimeError as exc:
        message = (f"collective {site} at {_describe(_position(site))}: the other ranks did not answer within "
                   f"{seconds:g} s ({str(exc).splitlines()[0] if str(exc) else 'timed out'}); a rank is stuck, "
                   f"died, or took another path. Raise {TIMEOUT_ENV} for slow rank-0-only work")
        _STATE.broken = message
        raise CollectiveTimeout(message) from None


def _position(site: str) -> dict[str, Any]:
    return {"run": _STATE.run[:150], "axis": _STATE.axis[:100], "site": site[:100], "seq": _STATE.seq}


def _exchange(record: dict[str, Any], site: str) -> list[dict[str, Any]]:
    """Every rank's ``record`` (small JSON) in rank order: one fixed-size gather."""
    import torch
    import torch.distributed as dist

    raw = json.dumps(record, default=str).encode()
    if len(raw) > _POSITION_BYTES:
        raise PolymodalError(f"collective {site}: position record too long ({len(raw)} bytes)")
    buf = torch.zeros(_POSITION_BYTES, dtype=torch.uint8, device=_comm_device())
    buf[: len(raw)] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    out = [torch.zeros_like(buf) for _ in range(dist.get_world_size())]
    _wait(dist.all_gather(out, buf, async_op=True), site)
    return [json.loads(bytes(t.cpu().tolist()).rstrip(b"\0").decode()) for t in out]


def guard(site: str, **facts: Any) -> list[dict[str, Any]]:
    """Check that every rank is at the same collective; returns each rank's ``facts`` (e.g. sizes).

    The position is (run, axis, ``site``, sequence number); a mismatch raises
    :class:`CollectiveMismatch` on every rank with everyone's position. Plugin
    authors reach it through :meth:`polymodal.evaluation.AxisContext.guard`
    before issuing a torch.distributed call of their own. No-op (``[facts]``)
    in one process.
    """
    if not active():
        return [facts]
    if _STATE.broken:
        raise CollectiveTimeout(f"process group unusable since an earlier timeout: {_STATE.broken}")
    _STATE.seq += 1
    me = {**_position(site), "facts": facts}
    everyone = _exchange(me, site)
    keys = [(p["run"], p["axis"], p["site"], p["seq"]) for p in everyone]
    if len(set(keys)) > 1:
        lines = "; ".join(f"rank {r} at {_describe(p)}" for r, p in enumerate(everyone))
        raise CollectiveMismatch(f"ranks reached different collectives: {lines}")
    return [p["facts"] for p in everyone]


def agree(site: str, error: str | None) -> list[str | None]:
    """Every rank's ``error`` (None: fine) at the end of a run, after ranks that were still inside it catch up.

    A rank that failed alone arrives here early; the others then meet this
    call in their next collective, raise :class:`CollectiveMismatch`, fail the
    same run and arrive too. Ranks in another run, or a broken group, raise.
    """
    if not _group_active() or _STATE.local_depth:
        return [error]
    if _STATE.broken:
        raise CollectiveTimeout(f"process group unusable since an earlier timeout: {_STATE.broken}")
    while True:
        me = {"run": _STATE.run[:150], "axis": "", "site": site[:100], "seq": -1, "facts": {"error": error}}
        everyone = _exchange(me, site)
        if all(p["site"] == site and p["seq"] == -1 for p in everyone):
            return [p["facts"]["error"] for p in everyone]
        if any(p["run"] != me["run"] for p in everyone):
            lines = "; ".join(f"rank {r} at {_describe(p)}" for r, p in enumerate(everyone))
            _STATE.broken = f"ranks are in different runs: {lines}"
            raise CollectiveMismatch(_STATE.broken)
        # the others are still inside this run: they saw the same records, raise and come here


def _comm_device(device: Any = None) -> Any:
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return device if device is not None and torch.device(device).type == "cuda" else \
            torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_reduce(t: Any, op: str, site: str) -> None:
    import torch.distributed as dist

    _wait(dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX, async_op=True), site)


def _reduce(values: Any, op: str, device: Any = None) -> Any:
    if not active():
        return values
    import torch

    site = f"all_reduce_{op}"
    if isinstance(values, Mapping):
        keys = sorted(values, key=repr)
        reduced = _reduce([values[k] for k in keys], op, device)
        return dict(zip(keys, reduced, strict=True))
    if isinstance(values, torch.Tensor):
        sizes = guard(site, shape=list(values.shape))
        if any(s["shape"] != list(values.shape) for s in sizes):
            raise CollectiveMismatch(f"{site}: tensor shapes differ across ranks: "
                                     + "; ".join(f"rank {r} {s['shape']}" for r, s in enumerate(sizes)))
        out = values.detach().to(_comm_device(device), dtype=torch.float64).clone()
        _all_reduce(out, op, site)
        return out.to(values.device, dtype=values.dtype)
    scalar = not isinstance(values, (list, tuple))
    flat = torch.tensor([float(values)] if scalar else [float(v) for v in values], dtype=torch.float64,
                        device=_comm_device(device))
    sizes = guard(site, n=int(flat.numel()))
    if any(s["n"] != flat.numel() for s in sizes):
        raise CollectiveMismatch(f"{site}: ranks reduce different numbers of values: "
                                 + "; ".join(f"rank {r} {s['n']}" for r, s in enumerate(sizes)))
    if flat.numel():
        _all_reduce(flat, op, site)
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


def _gather_bytes(data: bytes, site: str) -> list[bytes]:
    """Every rank's bytes: the guard carries the sizes, so one padded gather follows."""
    import torch
    import torch.distributed as dist

    sizes = [int(s["nbytes"]) for s in guard(site, nbytes=len(data))]
    width = max(sizes)
    if width == 0:
        return [b"" for _ in sizes]
    buf = torch.zeros(width, dtype=torch.uint8, device=_comm_device())
    if data:
        buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    out = [torch.zeros_like(buf) for _ in sizes]
    _wait(dist.all_gather(out, buf, async_op=True), site)
    return [t[:n].cpu().numpy().tobytes() for t, n in zip(out, sizes, strict=True)]


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable, produced in this process), in rank order; ``[obj]`` alone.

    With contiguous shards (:meth:`polymodal.evaluation.AxisContext.shard`),
    concatenating the per-rank lists in rank order restores the split's order.
    Objects are pickled: only gather what this job produced (never untrusted data).
    """
    if not active():
        return [obj]
    parts = _gather_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), "all_gather_object")
    return [pickle.loads(p) for p in parts]  # noqa: S301 - bytes produced by this job's own ranks


def gather_cat(items: list[T]) -> list[T]:
    """This rank's list of per-sample items joined with every other rank's, in rank (= split) order."""
    return [x for part in all_gather_object(items) for x in part]


def barrier(site: str = "barrier") -> None:
    """Wait for every rank (no-op in one process); the guard's exchange is the barrier."""
    if active():
        guard(site)


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself in one process)."""
    if not active():
        return obj
    import torch.distributed as dist

    mine = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL) if dist.get_rank() == src else b""
    return pickle.loads(_gather_bytes(mine, "broadcast_object")[src])  # noqa: S301 - this job's own bytes


def metric_sync(result: Any, group: Any = None) -> list[Any]:
    """torchmetrics ``dist_sync_fn``: every rank's state tensor, guarded, in rank order.

    Like torchmetrics' ``gather_all_tensors`` (pads to the largest shape and
    trims back), with two more things: the position check, and a rank without
    data (torchmetrics gives it an empty 1-D ``cat`` state) takes the other
    ranks' trailing dimensions and dtype instead of mismatching their shape.
    """
    if not active():
        return [result]
    import torch
    import torch.distributed as dist

    if group is not None and group is not dist.group.WORLD:
        from torchmetrics.utilities.distributed import gather_all_tensors

        return gather_all_tensors(result, group)
    facts = guard("torchmetrics sync", shape=list(result.shape), dtype=str(result.dtype).removeprefix("torch."))
    ref = max(facts, key=lambda f: len(f["shape"]))
    ndim = len(ref["shape"])
    shapes = []
    for r, f in enumerate(facts):
        if len(f["shape"]) != ndim and any(n == 0 for n in f["shape"]):
            shapes.append([0, *ref["shape"][1:]])
        elif len(f["shape"]) != ndim:
            raise CollectiveMismatch(f"torchmetrics sync at {_describe(_position('torchmetrics sync'))}: state "
                                     f"shapes differ in rank: rank {r} {f['shape']}, rank {facts.index(ref)} "
                                     f"{ref['shape']}")
        else:
            shapes.append(f["shape"])
    import math

    with_data = next((f for f in facts if math.prod(f["shape"]) > 0), ref)
    dtype = getattr(torch, with_data["dtype"])
    local_t = result.reshape(shapes[dist.get_rank()]).to(dtype)
    if ndim == 0:
        out = [torch.zeros_like(local_t) for _ in facts]
        _wait(dist.all_gather(out, local_t.contiguous(), async_op=True), "torchmetrics sync")
        return out
    top = [max(s[d] for s in shapes) for d in range(ndim)]
    padded = torch.zeros(top, dtype=dtype, device=local_t.device)
    padded[tuple(slice(0, n) for n in local_t.shape)] = local_t
    out = [torch.zeros_like(padded) for _ in facts]
    _wait(dist.all_gather(out, padded, async_op=True), "torchmetrics sync")
    return [t[tuple(slice(0, n) for n in s)] for t, s in zip(out, shapes, strict=True)]


@contextlib.contextmanager
def guarded_metrics() -> Iterator[None]:
    """Within: torchmetrics metrics synchronise through :func:`metric_sync` unless given their own ``dist_sync_fn``.

    torchmetrics resolves its default gather function at sync time from its
    ``metric`` module, so swapping that one name reaches every metric an axis
    builds (built-in or third-party) without passing anything to each.
    """
    import torchmetrics.metric as tm

    before = tm.gather_all_tensors
    tm.gather_all_tensors = lambda result, group=None: metric_sync(result, group)
    try:
        yield
    finally:
        tm.gather_all_tensors = before


__all__ = ["DEFAULT_TIMEOUT_S", "TIMEOUT_ENV", "CollectiveMismatch", "CollectiveTimeout", "active", "agree",
           "all_gather_object", "all_reduce_max", "all_reduce_sum", "barrier", "broadcast_object", "broken",
           "gather_cat", "guard", "guarded_metrics", "local", "metric_sync", "reset", "set_position",
           "timeout_seconds"]
