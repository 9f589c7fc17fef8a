"""Plain-text tables for the terminal: aligned columns, the last one wrapped to fit."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from datetime import datetime


def render(
    headers: Sequence[str], rows: Sequence[Sequence[object]], width: int | None = None
) -> str:
    """Columns padded to their widest cell; the last column wraps within ``width``."""
    width = width or shutil.get_terminal_size((100, 20)).columns
    cells = [[str(c) for c in row] for row in rows]
    n = len(headers)
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row[: n - 1]):
            widths[i] = max(widths[i], len(c))
    lead = sum(widths[: n - 1]) + 2 * (n - 1)
    last_w = max(width - lead - 1, 20)
    out = [
        "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers[: n - 1]))
        + "  " * (n > 1)
        + headers[-1]
    ]
    for row in cells:
        wrapped = textwrap.wrap(row[-1], last_w) or [""]
        first = "  ".join(c.ljust(widths[i]) for i, c in enumerate(row[: n - 1]))
        pad = " " * lead
        out.append((first + "  " if n > 1 else "") + wrapped[0])
        out.extend(pad + w for w in wrapped[1:])
    return "\n".join(line.rstrip() for line in out)


def when(iso: str | None) -> str:
    """An API timestamp as local time, to the minute (``2026-11-23 14:05``)."""
    if not iso:
        return "-"
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return dt.astimezone().strftime("%Y-%m-%d %H:%M")
