"""A spool on local disk for messages the server has not acknowledged yet.

One file per message under ``<FITSCOPE_DIR>/spool/<run id>/``, written atomically
(a temporary file renamed into place, removed again when the write fails); file
names start with the time the message was made, so sorting them keeps order, within
a run and across runs.  Each file records the message's destination (server address
and token identity).

A process that owns a run's directory (the live run, or a ``fitscope sync``) holds an
advisory lock on it (``spool/.locks/<run id>.lock``); the operating system releases it
when the process dies, however it dies.  Nobody else delivers a locked run's files, so
two consumers never send the same entry.  Entries the server refused for good are
moved to ``spool/rejected/<run id>/`` with a ``.reason.txt`` beside them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ._messages import Message

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one consumer at a time is up to the user
    fcntl = None  # type: ignore[assignment]

REJECTED = "rejected"
LOCKS = ".locks"
SUFFIX = ".json.gz"
_STALE_TMP_S = 60.0  # a temporary file older than this belongs to a writer that died


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._last_ns = 0  # names never go backwards, even if the wall clock does

    # -- writing ----------------------------------------------------------------------
    def put(self, run_id: str, msg: Message, dest: dict | None = None) -> Path:
        """Write one message; raise ``OSError`` if the disk will not take it (no file is left)."""
        d = self.root / run_id
        ns = self._last_ns = max(int(msg.created * 1e9), self._last_ns + 1)
        name = f"{ns:020d}-{msg.id}{SUFFIX}"
        tmp = d / (name + ".tmp")
        data = msg.to_spool(dest)
        try:
            try:
                tmp.write_bytes(data)
            except FileNotFoundError:  # the first message, or a sync pruned the directory
                d.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(data)
            os.replace(tmp, d / name)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return d / name

    # -- reading ----------------------------------------------------------------------
    def runs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir()
            and p.name not in (REJECTED, LOCKS)
            and not p.name.startswith(".")
            and any(p.glob("*" + SUFFIX))
        )

    def runs_oldest_first(self) -> list[str]:
        """Runs ordered by their oldest spooled message."""
        first = {}
        for r in self.runs():
            names = sorted(p.name for p in (self.root / r).glob("*" + SUFFIX))
            if names:
                first[r] = names[0]
        return sorted(first, key=lambda r: (first[r], r))

    def files(self, run_id: str | None = None) -> list[Path]:
        """Spooled files, oldest first (across runs too when ``run_id`` is None)."""
        runs = [run_id] if run_id else self.runs()
        out: list[Path] = []
        for r in runs:
            out.extend((self.root / r).glob("*" + SUFFIX))
        return sorted(out, key=lambda p: (p.name, p.parent.name))

    def count(self, run_id: str | None = None) -> int:
        return len(self.files(run_id))

    def load(self, path: Path) -> Message | None:
        """One spooled message; None when it is gone (another consumer took it) or unreadable
        (then it is set aside as ``.bad-<time>``, never resent as garbage)."""
        try:
            return Message.from_spool(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            with contextlib.suppress(OSError):
                path.rename(path.with_name(path.name + f".bad-{int(time.time())}"))
            return None

    def read(self, run_id: str | None = None) -> Iterator[tuple[Path, Message]]:
        for path in self.files(run_id):
            msg = self.load(path)
            if msg is not None:
                yield path, msg

    # -- after delivery -----------------------------------------------------------------
    @staticmethod
    def remove(path: Path) -> None:
        """Delete a delivered entry (its run's directory stays: a live writer may be using it)."""
        with contextlib.suppress(OSError):
            path.unlink()

    def prune(self, run_id: str) -> None:
        """Remove a run's directory once it is empty (by the run's owner, holding its lock)."""
        with contextlib.suppress(OSError):
            (self.root / run_id).rmdir()

    def reject(self, path: Path, reason: str) -> Path:
        """Set a refused entry aside (it never blocks the others); returns where it went."""
        d = self.root / REJECTED / path.parent.name
        d.mkdir(parents=True, exist_ok=True)
        target = d / path.name
        os.replace(path, target)
        (d / (path.name + ".reason.txt")).write_text(reason + "\n", encoding="utf-8")
        return target

    def clean_tmp(self, run_id: str) -> int:
        """Remove temporary files a dead writer left in a run's directory (call while holding
        its lock)."""
        n = 0
        now = time.time()
        for tmp in (self.root / run_id).glob("*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > _STALE_TMP_S:
                    tmp.unlink()
                    n += 1
        return n

    # -- ownership ----------------------------------------------------------------------
    def claim(self, run_id: str) -> RunLock | None:
        """Lock a run's directory for this process; None when another process holds it."""
        lock = RunLock(self.root / LOCKS / f"{run_id}.lock")
        return lock if lock.acquire() else None


class RunLock:
    """An exclusive, non-blocking advisory lock, released by ``release`` or process death."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def acquire(self) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "ab")  # noqa: SIM115 (held until release)
        except OSError:
            return True  # a read-only spool: nothing can be written or removed there anyway
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                return False
        self._fh = fh
        return True

    def release(self, drop: bool = False) -> None:
        """Unlock; ``drop`` also removes the lock file (when the run has nothing left)."""
        if self._fh is not None:
            if drop:
                with contextlib.suppress(OSError):
                    self.path.unlink()
            with contextlib.suppress(OSError):
                self._fh.close()  # closing the file drops the lock
            self._fh = None
