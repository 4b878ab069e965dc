"""torch.distributed set-up for ``torchrun``: nothing home-made.

Under ``torchrun`` the environment carries ``RANK``, ``WORLD_SIZE`` and the
rendezvous settings; :func:`distributed_context` initialises the default
process group from them (gloo on CPU, nccl when the device is CUDA) and tears
it down afterwards. Outside ``torchrun`` it is a no-op with rank 0 of 1.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

import attrs


@attrs.frozen
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None


def backend_for(device: str | None) -> str:
    """nccl for CUDA devices (or auto with CUDA available), gloo otherwise."""
    import torch

    wants_cuda = (device or "auto").startswith("cuda") or ((device or "auto") == "auto" and torch.cuda.is_available())
    return "nccl" if wants_cuda and torch.cuda.is_available() else "gloo"


@contextlib.contextmanager
def distributed_context(device: str | None = None) -> Iterator[DistInfo]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield DistInfo()
        return
    import torch
    import torch.distributed as dist

    backend = backend_for(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    from datetime import timedelta

    from polymodal import collective
    from polymodal.errors import PolymodalError

    created = not dist.is_initialized()
    if created:
        # Imported before the group exists, so that destroy_process_group can free it: importing
        # torch._dynamo after init_process_group (torchmetrics, torchvision, DDP and AdamW all import it)
        # keeps the group and its gloo threads alive until interpreter exit, where a thread finishing our
        # last collective aborts the process (see polymodal.cli.process_exit). Every command run under
        # torchrun imports it anyway, so this moves the cost, it does not add it.
        import torch._dynamo  # noqa: F401
        try:
            # The group's own timeout bounds what our guard does not see (DDP's gradient reductions).
            dist.init_process_group(backend=backend, timeout=timedelta(seconds=collective.timeout_seconds()))
        except (RuntimeError, ValueError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PolymodalError(
                f"torchrun rendezvous failed (rank {os.environ.get('RANK', '?')} of {world}, MASTER_ADDR="
                f"{os.environ.get('MASTER_ADDR', '?')}, MASTER_PORT={os.environ.get('MASTER_PORT', '?')}): "
                f"{first}") from None
        collective.reset()
    try:
        yield DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, backend)
    except BaseException:
        # No closing barrier on the way out of an error: a peer still waiting sees the group close.
        if created and dist.is_initialized():
            dist.destroy_process_group()
        raise
    if created and dist.is_initialized():
        try:
            if not collective.broken():
                collective.set_position()
                collective.barrier("end of the job")
        finally:
            # A DDP wrapper left in a reference cycle holds the group; collected here, the group is freed
            # (its threads joined) by destroy_process_group instead of at interpreter exit.
            gc.collect()
            dist.destroy_process_group()
