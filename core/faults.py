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
happens to fire. ``POLYMODAL_FAULT_MARK=<file>`` receives ``"N what"`` when
the fault fires, so the test can check it fired where it was meant to.

A sweep over hundreds of points cannot afford a fresh interpreter per trial
(importing torch and the plugins costs seconds; the suite under a second), so
a warm parent forks one child per point and each child calls :func:`arm`,
which replaces the environment's settings and restarts the count.
"""

from __future__ import annotations

import atexit
import errno
import os
import signal

_count = 0
_spec: tuple[str, int] | None = None
_mark: str | None = None
_fired: tuple[int, str] | None = None
_parsed = False


def _parse(raw: str, source: str) -> tuple[str, int] | None:
    raw = raw.strip()
    if not raw:
        return None
    kind, _, n = raw.partition("@")
    if kind not in ("kill", "enospc") or not n.isdigit() or int(n) < 1:
        raise ValueError(f"{source}={raw!r}: expected kill@N or enospc@N with N >= 1")
    return kind, int(n)


def _report_count() -> None:
    path = os.environ.get("POLYMODAL_FAULT_COUNT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(str(_count))


def arm(fault: str | None = None, *, mark: str | os.PathLike[str] | None = None) -> None:
    """Count from zero again and fail at ``fault`` (``"kill@N"``, ``"enospc@N"``; None: never).

    Overrides ``POLYMODAL_FAULT`` and ``POLYMODAL_FAULT_MARK`` for the rest of
    the process; ``mark`` receives ``"N what"`` when the fault fires. A crash
    sweep calls it first thing in each child it forks. A malformed ``fault``
    is a ValueError.
    """
    global _count, _spec, _mark, _fired, _parsed
    _spec = _parse(fault or "", "fault")
    _mark = os.fspath(mark) if mark is not None else None
    _count, _fired, _parsed = 0, None, True


def count() -> int:
    """How many write points this process has passed (since it started, or since :func:`arm`)."""
    return _count


def fired() -> tuple[int, str] | None:
    """``(N, what)`` of the point where the fault fired (an ENOSPC the process survived), else None."""
    return _fired


def write_point(what: str) -> None:
    """Count one write or fsync (``what`` says which) and fail here if ``POLYMODAL_FAULT`` says so."""
    global _count, _spec, _mark, _fired, _parsed
    if not _parsed:
        _parsed = True
        try:
            _spec = _parse(os.environ.get("POLYMODAL_FAULT", ""), "POLYMODAL_FAULT")
        except ValueError as exc:  # a mistyped setting of a test harness: stop before writing anything
            raise SystemExit(str(exc)) from None
        _mark = os.environ.get("POLYMODAL_FAULT_MARK") or None
        if os.environ.get("POLYMODAL_FAULT_COUNT"):
            atexit.register(_report_count)
    _count += 1
    if _spec is None or _count != _spec[1]:
        return
    _fired = (_count, what)
    if _mark:  # lets the test assert the fault happened, and where
        with open(_mark, "w", encoding="utf-8") as fh:
            fh.write(f"{_count} {what}")
    if _spec[0] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), what)
