"""One writer per results folder: a second writer is refused with the holder's name; readers still work."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polymodal.errors import PolymodalError
from polymodal.writer_lock import LOCK_FILE, writer_lock

HOLD = """
import sys, time
from polymodal.writer_lock import writer_lock
with writer_lock(sys.argv[1], "polymodal run"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holder_frees_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "results"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(PolymodalError) as err, writer_lock(out, "polymodal run"):
            pass
        message = str(err.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in message and "\n" not in message
        assert (out / LOCK_FILE).read_text()  # readers can see who writes; they take no lock
    finally:
        holder.kill()  # a SIGKILLed holder leaves its lock file behind ...
        holder.wait()
    with writer_lock(out, "polymodal run"):  # ... but not its lock: the kernel dropped it
        assert str(os.getpid()) in (out / LOCK_FILE).read_text()


def test_the_lock_is_reentrant_across_folders_and_released_on_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError), writer_lock(tmp_path / "a", "x"):
        raise ValueError
    with writer_lock(tmp_path / "a", "x"), writer_lock(tmp_path / "a" / "runs" / "train", "y"):
        time.sleep(0)
    (tmp_path / "file").write_text("")
    with pytest.raises(PolymodalError, match="exists and is not a folder"), writer_lock(tmp_path / "file", "x"):
        pass
