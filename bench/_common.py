"""Helpers shared by the benchmarks: a fresh database, CPU time, percentiles.

The server itself is started the way the tests start it (``tests.support.servers``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tests.support.servers import fresh_database


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process and its children (the server's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def percentiles(xs: list[float], ps: tuple[int, ...]) -> list[float]:
    if not xs:
        return [float("nan")] * len(ps)
    s = sorted(xs)
    return [s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] for p in ps]


@contextlib.contextmanager
def database(url: str | None, tmp: Path) -> Iterator[str]:
    """A fresh database for one benchmark: an SQLite file in ``tmp``, or for a PostgreSQL
    server URL a new database on it (dropped afterwards)."""
    if not url:
        yield f"sqlite:///{tmp / 'bench.db'}"
    elif not url.startswith("postgresql"):
        yield url
    else:
        with fresh_database(url, prefix="fitscope_bench") as fresh:
            yield fresh
