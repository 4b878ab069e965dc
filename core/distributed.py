"""torch.distributed set-up for ``torchrun``: nothing home-made.

Under ``torchrun`` the environment carries ``RANK``, ``WORLD_SIZE`` and the
rendezvous settings; :func:`distributed_context` initialises the default
process group from them (gloo on CPU, nccl when the device is CUDA) and tears
it down afterwards. Outside ``torchrun`` it is a no-op with rank 0 of 1.
"""

from __future__ import annotations

import contextlib
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
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend=backend)
    try:
        yield DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, backend)
    finally:
        if created and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
