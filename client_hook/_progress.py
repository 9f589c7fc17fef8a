"""A progress bar for long imports, syncs and exports (standard library only).

On a terminal it redraws one line in place, at most ten times a second; when
the output is a file or a pipe it stays silent, so logs are not flooded.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_EVERY = 0.1  # seconds between redraws: smooth to the eye, cheap for the loop


def _human(n: float, unit: str) -> str:
    if unit == "B":
        for suffix in ("B", "KiB", "MiB", "GiB"):
            if abs(n) < 1024 or suffix == "GiB":
                return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
            n /= 1024
    return f"{int(n):,}{(' ' + unit) if unit else ''}"


class Progress:
    """``with Progress(total, "importing") as bar: bar.advance(n)``.

    ``total`` may be ``None`` (unknown): the bar then shows the count so far.
    ``enabled`` defaults to whether ``stream`` is a terminal.
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        *,
        unit: str = "",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self.stream = stream or sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._clock = clock
        self._start = clock()
        self._last_draw = -1.0
        self._width = width

    def __enter__(self) -> Progress:
        self.draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.draw()

    def set(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        self.draw()

    def line(self) -> str:
        """The text of the bar as it is drawn now."""
        width = self._width or shutil.get_terminal_size((80, 20)).columns
        elapsed = max(self._clock() - self._start, 1e-9)
        count = _human(self.done, self.unit)
        if self.total:
            frac = min(self.done / self.total, 1.0)
            done = count if self.unit == "B" else _human(self.done, "")
            count = f"{done}/{_human(self.total, self.unit)}"
            tail = f" {frac * 100:3.0f}% {count}"
            if 0 < frac < 1:
                eta = elapsed * (1 - frac) / frac
                tail += f" ~{eta:.0f}s left"
            head = f"{self.label} "
            room = width - len(head) - len(tail) - 3
            if room >= 10:
                bar_w = min(room, 40)
                filled = int(round(frac * bar_w))
                return f"{head}[{'#' * filled}{'.' * (bar_w - filled)}]{tail}"
            return (head + tail.strip())[: width - 1]
        rate = self.done / elapsed
        return f"{self.label} {count} ({_human(rate, self.unit)}/s)"[: width - 1]

    def draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if not force and now - self._last_draw < REDRAW_EVERY:
            return
        self._last_draw = now
        try:
            self.stream.write("\r\x1b[K" + self.line())
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def close(self) -> None:
        if self.enabled:
            self.draw(force=True)
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self.enabled = False
