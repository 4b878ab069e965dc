"""A progress line on stderr: position, loss, throughput, time left.

On a terminal it redraws one line in place (at most ~5 times a second, so it
costs nothing next to a training step); elsewhere (CI logs, files) it prints a
full line every ``log_every`` seconds so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, desc: str, *, stream: TextIO | None = None, enabled: bool = True,
                 log_every: float = 10.0):
        self.total = total
        self.desc = desc
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
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
            parts.append(f"left {_fmt(max(0.0, (self.total - self.count) / rate))}")
        parts.append(f"elapsed {_fmt(elapsed)}")
        line = "  ".join(parts)
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self, **figures: float) -> None:
        if not self.enabled:
            return
        self._draw(time.perf_counter(), figures)
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
