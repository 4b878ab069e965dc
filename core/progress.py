"""The one progress display: a status line on stderr, redrawn in place on a terminal.

Two views share one writer (:class:`StatusLine`) and one duration format:
:class:`SuiteProgress` counts a suite's (run, axis) units with a time-left
estimate; :class:`Progress` counts steps of a loop (training epochs) with
figures, throughput and time left. On a terminal the line is redrawn in place
(throttled, so it costs nothing next to a step); elsewhere (CI logs, files)
a full line is printed every few seconds so logs stay readable.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from an hour on."""
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"


class StatusLine:
    """Writes status lines: in place on a terminal, one per line elsewhere."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def show(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text[: shutil.get_terminal_size().columns - 1])
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end_line(self) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()


class SuiteProgress:
    """One status line for a suite run: run, axis, progress within it, elapsed and remaining."""

    def __init__(self, total_units: int, enabled: bool = True, stream: TextIO | None = None):
        self.total = total_units
        self.done = 0
        self.enabled = enabled
        self.started = time.perf_counter()
        self.unit_times: list[float] = []
        self.prefix = ""
        self._last = 0.0
        self.out = StatusLine(stream)
        self.tty = self.out.tty

    def unit(self, prefix: str) -> None:
        self.prefix = prefix
        self.line("starting")

    def finish_unit(self, seconds: float, skipped: bool = False) -> None:
        self.done += 1
        if not skipped:
            self.unit_times.append(seconds)

    def line(self, what: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and not self.tty and now - self._last < 5:
            return
        self._last = now
        elapsed = now - self.started
        if self.unit_times:
            left = (self.total - self.done) * sum(self.unit_times) / len(self.unit_times)
            eta = f"~{format_duration(left)} left"
        else:
            eta = "estimating"
        self.out.show(f"[{self.done}/{self.total}] {self.prefix}: {what} | {format_duration(elapsed)} elapsed, {eta}")

    def note(self, text: str, always: bool = False) -> None:
        if self.enabled or always:
            self.out.note(text)


class Progress:
    """Steps of a loop (``total`` may be unknown) with figures, throughput and time left."""

    def __init__(self, total: int | None, desc: str, *, stream: TextIO | None = None, enabled: bool = True,
                 log_every: float = 10.0):
        self.total = total
        self.desc = desc
        self.out = StatusLine(stream)
        self.enabled = enabled
        self.tty = self.out.tty
        self.interval = 0.2 if self.tty else log_every
        self.start = time.perf_counter()
        self.last = 0.0
        self.count = 0
        self.samples = 0

    def update(self, n: int = 1, samples: int = 0, **figures: float) -> None:
        self.count += n
        self.samples += samples
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < self.interval and (self.total is None or self.count < self.total):
            return
        self.last = now
        self._draw(now, figures)

    def _draw(self, now: float, figures: dict[str, float]) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        pos = f"{self.count}/{self.total}" if self.total else f"{self.count}"
        parts = [f"{self.desc} {pos}"]
        parts += [f"{k} {v:.4g}" for k, v in figures.items()]
        parts.append(f"{rate:.2f} it/s")
        if self.samples:
            parts.append(f"{self.samples / elapsed:.0f} samples/s")
        if self.total and rate > 0:
            parts.append(f"left {format_duration(max(0.0, (self.total - self.count) / rate))}")
        parts.append(f"elapsed {format_duration(elapsed)}")
        self.out.show("  ".join(parts))

    def close(self, **figures: float) -> None:
        if not self.enabled:
            return
        self._draw(time.perf_counter(), figures)
        self.out.end_line()


__all__ = ["Progress", "StatusLine", "SuiteProgress", "format_duration"]
