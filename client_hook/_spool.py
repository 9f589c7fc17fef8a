"""A spool on local disk for messages the server has not acknowledged yet.

One file per message under ``<FITSCOPE_DIR>/spool/<run id>/``, written atomically;
file names sort in the order the messages were made, so a replay keeps order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from ._messages import Message


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, run_id: str, msg: Message) -> Path:
        """Write one message; raise ``OSError`` if the disk will not take it."""
        d = self.root / run_id
        d.mkdir(parents=True, exist_ok=True)
        name = f"{int(msg.created * 1e9):020d}-{msg.id}.json.gz"
        tmp = d / (name + ".tmp")
        tmp.write_bytes(msg.to_spool())
        os.replace(tmp, d / name)
        return d / name

    def runs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and any(p.glob("*.json.gz"))
        )

    def files(self, run_id: str | None = None) -> list[Path]:
        runs = [run_id] if run_id else self.runs()
        out: list[Path] = []
        for r in runs:
            out.extend(sorted((self.root / r).glob("*.json.gz")))
        return out

    def count(self, run_id: str | None = None) -> int:
        return len(self.files(run_id))

    def read(self, run_id: str | None = None) -> Iterator[tuple[Path, Message]]:
        for path in self.files(run_id):
            try:
                yield path, Message.from_spool(path.read_bytes())
            except (OSError, ValueError, KeyError, EOFError):
                # a torn or foreign file: keep it aside rather than lose or resend garbage
                path.rename(path.with_suffix(f".bad-{int(time.time())}"))

    @staticmethod
    def remove(path: Path) -> None:
        try:
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
        except OSError:
            pass
