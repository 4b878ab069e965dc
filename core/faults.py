"""Fault injection at numbered write points, for crash tests by construction.

Every durable write of the platform (a result line, an artifact record, a
commit record, a manifest, a checkpoint file) and every ``fsync`` calls
:func:`write_point` first. With ``POLYMODAL_FAULT`` unset that is a counter
and nothing else. With ``POLYMODAL_FAULT="kill@N"`` the process kills itself
with SIGKILL at the N-th point (1-based); with ``"enospc@N"`` the N-th point
raises ``OSError(ENOSPC)`` as a full disk would. A crash test runs a suite
once with ``POLYMODAL_FAULT_COUNT=<file>`` to learn how many points there are,
then kills at each of them (SQLite's crash tests and RocksDB's db_crashtest
work this way), so a kill lands between any two writes, not wherever a timer
happens to fire.
"""

from __future__ import annotations

import atexit
import errno
import os
import signal

_count = 0
_spec: tuple[str, int] | None = None
_parsed = False


def _parse() -> tuple[str, int] | None:
    raw = os.environ.get("POLYMODAL_FAULT", "").strip()
    if not raw:
        return None
    kind, _, n = raw.partition("@")
    if kind not in ("kill", "enospc") or not n.isdigit() or int(n) < 1:
        raise SystemExit(f"POLYMODAL_FAULT={raw!r}: expected kill@N or enospc@N with N >= 1")
    return kind, int(n)


def _report_count() -> None:
    path = os.environ.get("POLYMODAL_FAULT_COUNT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(str(_count))


def write_point(what: str) -> None:
    """Count one write or fsync (``what`` says which) and fail here if ``POLYMODAL_FAULT`` says so."""
    global _count, _spec, _parsed
    if not _parsed:
        _parsed = True
        _spec = _parse()
        if os.environ.get("POLYMODAL_FAULT_COUNT"):
            atexit.register(_report_count)
    _count += 1
    if _spec is None or _count != _spec[1]:
        return
    if _spec[0] == "kill":
        marker = os.environ.get("POLYMODAL_FAULT_MARK")
        if marker:  # lets the test assert the kill happened, and where
            with open(marker, "w", encoding="utf-8") as fh:
                fh.write(f"{_count} {what}")
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), what)
