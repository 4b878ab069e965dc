"""One writer per output folder: an OS-level lock held for a whole ``run`` or ``train``.

Two processes appending to one results folder interleave their rows (the
issue-15 reproduction got 211 rows, 102 of them duplicate keys). The lock is
``fcntl.flock`` on ``<folder>/.polymodal-lock``: the kernel drops it when its
holder dies, however it dies, so a stale lock from a killed run never blocks
the next one. The file also records the holder's pid, host and start time,
so the second writer's error names who holds the folder. Readers (``report``,
``compare``) take no lock and work while a run is going.

Where ``flock`` is unavailable (Windows), the lock is an ``O_EXCL`` file
holding pid and host; one whose pid is dead on this host is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from polymodal.errors import PolymodalError

LOCK_FILE = ".polymodal-lock"


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    if not isinstance(info, dict):
        return "another process"
    since = info.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, (int, float)) else "?"
    return f"pid {info.get('pid')} on host {info.get('host')} ({info.get('command', '?')}, since {when})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def writer_lock(folder: str | Path, command: str) -> Iterator[None]:
    """Hold the folder's writer lock for the block; a second writer gets a PolymodalError naming the holder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise PolymodalError(f"--out {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PolymodalError(f"--out {folder}: cannot write there: {exc.strerror or exc}") from None
    path = folder / LOCK_FILE
    me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": time.time()})
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    if fcntl is None:  # pragma: no cover - Windows
        yield from _exclusive_file(path, me, folder, command)
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise PolymodalError(f"--out {folder}: cannot write there: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise PolymodalError(f"{folder}: another writer holds it: {_holder_text(path)}; wait for it to finish, "
                                 f"or use another --out ({command} refuses to write into a folder in use)") from None
        os.ftruncate(fd, 0)
        os.write(fd, me.encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _exclusive_file(path: Path, me: str, folder: Path, command: str) -> Iterator[None]:  # pragma: no cover
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
                stale = info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid")))
            except (OSError, ValueError, TypeError):
                stale = False
            if stale:
                path.unlink(missing_ok=True)
                continue
            raise PolymodalError(f"{folder}: another writer holds it: {_holder_text(path)}; wait for it to finish, "
                                 f"or use another --out ({command} refuses to write into a folder in use)") from None
        os.write(fd, me.encode())
        os.close(fd)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
        return
    raise PolymodalError(f"{folder}: cannot take the writer lock {path}")
