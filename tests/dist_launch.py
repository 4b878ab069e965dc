"""Launch ``python -m polymodal ...`` under torchrun with 2 CPU (gloo) processes, for the distributed tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_env(rank: int, world: int, port: int) -> dict[str, str]:
    """The variables torchrun sets for one rank of a job on this machine (``polymodal.distributed`` reads them)."""
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def torchrun(args: list[str], cwd: Path, nproc: int = 2, timeout: float = 240,
             entry: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``polymodal ARGS`` on ``nproc`` local processes; fail with both ranks' output on error.

    ``entry`` replaces ``-m polymodal`` (e.g. ``["--no-python", python, probe.py]`` for a wrapper script).
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--nnodes=1",
           f"--master-port={free_port()}", "--master-addr=127.0.0.1", *(entry or ["-m", "polymodal"]), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"torchrun failed ({proc.returncode}):\nSTDOUT\n{proc.stdout[-4000:]}\n"
                             f"STDERR\n{proc.stderr[-6000:]}")
    return proc
